"""What a network costs: memory footprint (paper Eq. 4)."""

from .memory import MemoryItem, MemoryReport, memory_report

__all__ = ["MemoryItem", "MemoryReport", "memory_report"]

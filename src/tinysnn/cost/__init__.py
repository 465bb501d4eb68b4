"""What a network costs: memory footprint (paper Eq. 4)."""

from .memory import BitWidths, MemoryItem, MemoryReport, memory_report

__all__ = ["BitWidths", "MemoryItem", "MemoryReport", "memory_report"]

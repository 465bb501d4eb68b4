"""C helpers for the simulator's hottest loops, built on first use (``build``) and called through
ctypes. Each gives bit for bit what a torch path gives; without a C compiler the torch path runs."""

"""Running a plan: job steps shared by the local and Ray executors, artifact store, result rows, lock, interrupts, progress."""

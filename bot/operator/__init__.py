"""What operators run and read: setup, pages, checks, replay and the usage report."""

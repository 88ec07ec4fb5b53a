"""One module per pathway stage. Each reads its parameter group and writes events."""

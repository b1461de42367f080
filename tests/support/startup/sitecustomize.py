"""Loaded by the dashboards the tests start (their PYTHONPATH): SIGUSR1 writes every thread's
Python stack to the process's stderr (its daphne.log), for a test to show where a process
waits when it fails."""

import faulthandler
import signal

faulthandler.register(signal.SIGUSR1, all_threads=True)

"""Ctrl-C for the commands the tests start: a shell that runs the suite in the background (`pytest &`)
starts it with SIGINT ignored, and children inherit that, so a SIGINT test would wait forever."""
import signal


def default_sigint() -> None:
    """preexec_fn for subprocess.Popen: the child reacts to SIGINT as a terminal's Ctrl-C makes it."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)

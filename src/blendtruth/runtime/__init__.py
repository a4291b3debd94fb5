"""Running untrusted work safely: memory and time limits (``limits``), a limited child
process (``child``) and clean stops on SIGINT/SIGTERM (``interrupts``)."""

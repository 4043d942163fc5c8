"""The processes of one pod: the supervisor, its workers, how many CPUs they share, the slots
they pool and the board on which each reports readiness.

Imports nothing on purpose: the supervisor runs from here and must never load torch or gRPC."""

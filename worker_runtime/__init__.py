"""The program inside each worker: ``/start`` and ``/healthz``, the step loop, and the
browser and http executors. It imports only the base dependencies and ``core.models`` /
``core.contracts``, never the server side (Temporal, MongoDB, FastAPI, settings, crypto)."""

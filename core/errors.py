"""castra's error hierarchy. Library errors are mapped to these at the edge where they occur;
only the API layer turns them into HTTP problems (api/problems.py).

    CastraError
    ├── NotFound             an object does not exist, or belongs to another tenant
    ├── Conflict             the request clashes with the current state
    ├── InvalidInput         well-formed request, unacceptable content
    ├── Unauthenticated      missing, unknown or revoked key
    ├── Forbidden            a valid key used outside its scope
    ├── Unavailable          a dependency (Temporal, MongoDB, secrets) cannot be reached
    └── ProvisioningError    a worker could not be created, started or reached
"""

from __future__ import annotations


class CastraError(Exception):
    """Base of every error castra raises on purpose."""

    #: a stable short code, used in problem+json ``type`` URIs and Temporal error types
    code = "error"


class NotFound(CastraError):
    code = "not-found"


class Conflict(CastraError):
    code = "conflict"


class InvalidInput(CastraError):
    code = "invalid-input"


class Unauthenticated(CastraError):
    code = "unauthenticated"


class Forbidden(CastraError):
    code = "forbidden"


class Unavailable(CastraError):
    code = "unavailable"


class ProvisioningError(CastraError):
    code = "provisioning-failed"

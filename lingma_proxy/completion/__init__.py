"""One completion, whatever the API: the service, its request preparation, and the parts of a turn."""

from .prepared import Prepared
from .service import CompletionService, affinity_key

__all__ = ["CompletionService", "Prepared", "affinity_key"]

"""Errors a use case raises; the HTTP layer turns each kind into its status code."""

from __future__ import annotations


class ServiceError(Exception):
    """A request the service refuses, with a message meant for the caller."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class NotFoundError(ServiceError):
    """The thing asked for does not exist in the caller's store."""


class ConflictError(ServiceError):
    """The request clashes with what is already stored (a duplicate name, say)."""


class InvalidInputError(ServiceError):
    """The request is well formed but its values cannot be used."""


class ForbiddenError(ServiceError):
    """The caller may not do this (a store setting forbids it)."""


class LimitExceededError(ServiceError):
    """The request asks for more than a configured limit allows."""


class UnauthenticatedError(ServiceError):
    """No key, or a key that is unknown or revoked."""


class RateLimitedError(ServiceError):
    """The caller's key has spent its requests for now."""

    def __init__(self, detail: str, retry_after_s: int) -> None:
        super().__init__(detail)
        self.retry_after_s = retry_after_s

"""Errors the engine raises for bad input. Each names where (file/field/row) and the rule."""

from __future__ import annotations


class QuantsiteInputError(ValueError):
    """Bad input: ``where`` names the file, field or row; ``rule`` the rule it broke."""

    def __init__(self, where: str, rule: str) -> None:
        self.where = where
        self.rule = rule
        super().__init__(f"{where}: {rule}")


class ConfigError(QuantsiteInputError):
    """A configuration value (YAML, admin, API) breaks a rule."""


class DataValidationError(QuantsiteInputError):
    """Price data breaks a rule and was refused as a whole (nothing stored)."""

"""Model choice fields that refuse an id no database column can hold.

Django's own look the posted id up as it is: ``99999999999999999999`` then reaches the driver,
which raises (SQLite ``OverflowError``, PostgreSQL "out of range"): a 500 for a typo or a probe.
These answer it as any unknown choice, a form error.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.core.exceptions import ValidationError

ID_LIMIT = 2**63 - 1  # a bigint


def _holdable(value: Any) -> bool:
    try:
        return abs(int(str(value).strip())) <= ID_LIMIT
    except ValueError:
        return True  # not a number: Django's own check says so


class ModelChoiceField(forms.ModelChoiceField):
    def to_python(self, value):
        if value not in self.empty_values and not _holdable(value):
            raise ValidationError(self.error_messages["invalid_choice"], code="invalid_choice")
        return super().to_python(value)


class ModelMultipleChoiceField(forms.ModelMultipleChoiceField):
    def _check_values(self, value):
        for each in value:
            if not _holdable(each):
                raise ValidationError(
                    self.error_messages["invalid_choice"], code="invalid_choice", params={"value": each}
                )
        return super()._check_values(value)

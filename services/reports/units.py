"""Grams and fractions as people read them: kg with the precision the size needs, and
percentages. Machine outputs (JSON, CSV) keep grams and fractions, named so."""

from __future__ import annotations


def mass_text(grams: float) -> str:
    """``16 g``, ``2.35 kg``, ``145.2 kg``, ``1,452 kg``: never ``0.0 kg`` for some grams."""
    size = abs(grams)
    if size < 1000:
        return f"{grams:,.0f} g"
    kg = grams / 1000
    if size < 10_000:
        return f"{kg:.2f} kg"
    if size < 1_000_000:
        return f"{kg:,.1f} kg"
    return f"{kg:,.0f} kg"


def kg_text(grams: float) -> str:
    """``0.016 kg``, ``2.345 kg``, ``145.2 kg``, ``1,452 kg``: always kg, so a column of
    them reads in one unit (the officer's page); under 10 kg to the gram, so some grams
    never read as ``0.000 kg``."""
    kg = grams / 1000
    size = abs(kg)
    if size < 10:
        return f"{kg:.3f} kg"
    if size < 1000:
        return f"{kg:,.1f} kg"
    return f"{kg:,.0f} kg"


def percent_text(fraction: float | None) -> str:
    """``28.0%``; an empty string when there is no ratio (nothing to divide by)."""
    return "" if fraction is None else f"{fraction * 100:.1f}%"

"""The joint MILP: trips, loads by temperature class, packaging choice, container pools and
backhaul, built in Pyomo from a scenario and its candidate trips.

The maths (sets, variables, constraints, objective) is written out in docs/optimizer.md,
and each family of constraints has a builder of its own whose docstring states its rows
with the names used there: `sets` (the index sets), `service` (service days, packaging),
`trip_counts`, `milk_runs` (loads, backhaul, visit covers), `trunk`, `fleet`, `pools`
(container pools and the horizon's ends), `objective` and `covers` (capacity covers);
`build` puts them together. This package only builds: solving is optimizer.solver,
turning values into a plan is optimizer.plan.

Modes share one builder so that the baselines are computed by the same code as the joint
plan (an unfair baseline is the easiest way to flatter a model):
- ``joint``: everything decided together;
- ``single_use``: reusable containers switched off (stage 1 of the sequential baseline);
- ``uncoordinated``: one trip per temperature class, recyclables on dedicated trips,
  single-use packaging, presale orders served on their first day.
Stage 2 of the sequential baseline is ``joint`` with the trip counts fixed (``fixed_trips``).
"""

from optimizer.model.build import BuiltModel, build_model

__all__ = ["BuiltModel", "build_model"]

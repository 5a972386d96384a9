"""The journeys the fault tests run (gndp-journey/1). Handlers named `rel_*` live in
tests/reliability/handlers.py; `noop`, `set_context` and `fail` are the engine's own."""

# R1, R2, R4, R5: a person's step, a system step, a person's step.
CRASH = """
format: gndp-journey/1
journey: {id: rel-crash, name: Crash drill}
roles:
  - {id: role-rel, name: Reliability clerk}
phases:
  - id: phase-rel-crash
    name: Crash drill
    modules:
      - {id: module-rel-crash, name: Crash drill, atoms: [rel-fill, rel-slow, rel-check]}
atoms:
  - id: rel-fill
    name: Fill in
    performed_by: role-rel
    form:
      - {name: amount, type: number, required: true}
  - {id: rel-slow, name: Slow system step, kind: system, handler: rel_slow, params: {first_sleep: 60}}
  - {id: rel-check, name: Check, performed_by: role-rel}
edges:
  - {type: ENABLES, from: rel-fill, to: rel-slow}
  - {type: ENABLES, from: rel-slow, to: rel-check}
"""

# R5: the same shape with a quick system step.
FLOW = """
format: gndp-journey/1
journey: {id: rel-flow, name: Outage drill}
roles:
  - {id: role-rel, name: Reliability clerk}
phases:
  - id: phase-rel-flow
    name: Outage drill
    modules:
      - {id: module-rel-flow, name: Outage drill, atoms: [flow-fill, flow-sys, flow-check]}
atoms:
  - id: flow-fill
    name: Fill in
    performed_by: role-rel
    form:
      - {name: amount, type: number, required: true}
  - {id: flow-sys, name: System step, kind: system, handler: set_context, params: {checked: true}}
  - {id: flow-check, name: Check, performed_by: role-rel}
edges:
  - {type: ENABLES, from: flow-fill, to: flow-sys}
  - {type: ENABLES, from: flow-sys, to: flow-check}
"""

# R7: a step that always raises, with two retries; and healthy work beside it.
POISON = """
format: gndp-journey/1
journey: {id: rel-poison, name: Poison drill}
roles:
  - {id: role-rel, name: Reliability clerk}
phases:
  - id: phase-rel-poison
    name: Poison drill
    modules:
      - {id: module-rel-poison, name: Poison drill, atoms: [poison-step, poison-after]}
atoms:
  - {id: poison-step, name: Always fails, kind: system, handler: fail, params: {message: poison}, retries: 2}
  - {id: poison-after, name: Never reached, performed_by: role-rel}
edges:
  - {type: ENABLES, from: poison-step, to: poison-after}
"""

GOOD = """
format: gndp-journey/1
journey: {id: rel-good, name: Healthy work}
roles:
  - {id: role-rel, name: Reliability clerk}
phases:
  - id: phase-rel-good
    name: Healthy work
    modules:
      - {id: module-rel-good, name: Healthy work, atoms: [good-step, good-after]}
atoms:
  - {id: good-step, name: Works, kind: system, handler: rel_effect}
  - {id: good-after, name: Next, performed_by: role-rel}
edges:
  - {type: ENABLES, from: good-step, to: good-after}
"""

# C6: a rule branch (a queue role that must claim, or straight on), an OR-merge into a
# system step, a parallel split with an AND-join, and a system step with an outside effect.
JEPSEN = """
format: gndp-journey/1
journey: {id: rel-jepsen, name: Jepsen-lite}
roles:
  - {id: role-rel-a, name: Officers}
  - {id: role-rel-q, name: Reviewers, assignment: queue}
phases:
  - id: phase-rel-j1
    name: Intake
    modules:
      - {id: module-rel-j1, name: Intake, atoms: [j-apply, j-score, j-review, j-quick]}
  - id: phase-rel-j2
    name: Work
    modules:
      - {id: module-rel-j2, name: Work, atoms: [j-open, j-left, j-right, j-join, j-effect]}
atoms:
  - id: j-apply
    name: Apply
    performed_by: role-rel-a
    form:
      - {name: amount, type: number, required: true}
  - {id: j-score, name: Score, kind: system, handler: set_context, params: {scored: true}}
  - {id: j-review, name: Review, performed_by: role-rel-q}
  - {id: j-quick, name: Quick check, performed_by: role-rel-a}
  - {id: j-open, name: Open file, kind: system, handler: rel_effect}
  - {id: j-left, name: Left branch, performed_by: role-rel-a}
  - {id: j-right, name: Right branch, performed_by: role-rel-q}
  - id: j-join
    name: Decide
    performed_by: role-rel-a
    form:
      - {name: approved, type: boolean, required: true}
  - {id: j-effect, name: Notify, kind: system, handler: rel_effect}
edges:
  - {type: ENABLES, from: j-apply, to: j-score}
  - {type: ENABLES, from: j-score, to: j-review, rule: rule-rel-big}
  - {type: ENABLES, from: j-score, to: j-quick, default: true}
  - {type: ENABLES, from: j-review, to: j-open}
  - {type: ENABLES, from: j-quick, to: j-open}
  - {type: ENABLES, from: j-open, to: j-left}
  - {type: ENABLES, from: j-open, to: j-right}
  - {type: ENABLES, from: j-left, to: j-join}
  - {type: ENABLES, from: j-right, to: j-join}
  - {type: ENABLES, from: j-join, to: j-effect}
rules:
  - rule_id: rule-rel-big
    conditions: [{field: amount, operator: gte, value: 500}]
"""

# R4e: four system steps in a row, then a person's step: a worker runs the chain alone.
CHAIN = """
format: gndp-journey/1
journey: {id: rel-chain, name: System chain}
roles:
  - {id: role-rel, name: Reliability clerk}
phases:
  - id: phase-rel-chain
    name: System chain
    modules:
      - {id: module-rel-chain, name: System chain, atoms: [chain-1, chain-2, chain-3, chain-4, chain-end]}
atoms:
  - {id: chain-1, name: First, kind: system, handler: rel_effect, params: {sleep: 0.005}}
  - {id: chain-2, name: Second, kind: system, handler: set_context, params: {second: true}}
  - {id: chain-3, name: Third, kind: system, handler: rel_effect, params: {sleep: 0.005}}
  - {id: chain-4, name: Fourth, kind: system, handler: set_context, params: {fourth: true}}
  - {id: chain-end, name: Look, performed_by: role-rel}
edges:
  - {type: ENABLES, from: chain-1, to: chain-2}
  - {type: ENABLES, from: chain-2, to: chain-3}
  - {type: ENABLES, from: chain-3, to: chain-4}
  - {type: ENABLES, from: chain-4, to: chain-end}
"""

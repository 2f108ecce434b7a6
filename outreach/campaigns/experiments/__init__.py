"""A/B experiments on a campaign: settings (``setup``), who gets which variant
(``assignment``), the statistics (``stats``) and the decision (``decision``).

How it runs: launch sends the test share only (``assignment.page``, called by dispatch,
leaves the rest out of the ledger); the watch holds the campaign open and, with the beat
(``decision.drain``), decides at ``started_at + decide_after``; the decision resets the
dispatch cursor so the audience is walked again and the rest gets the winner (or A when
inconclusive). The ledger's HSETNX mails each address once across both phases.
Pause: the automatic decision waits while the campaign is paused and runs as soon as it is
resumed (a decision by hand is taken while paused too; the rest phase starts on resume).
"""

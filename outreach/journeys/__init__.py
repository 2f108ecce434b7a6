"""Journeys: nurture flows that follow each person step by step, exactly once.

``definition`` checks a journey (trigger, steps, settings), ``catalog`` keeps journeys and
their versions, ``control`` activates, pauses, resumes and stops them, ``enrollments`` lets
people in and reads them, ``engine`` drains the due index and runs each (enrollment, step)
under a claim (claim, act, mark), ``steps`` holds what each step type does, ``inbox`` turns
what lower layers wrote (registrations, qualifications, opens, clicks, segment moves) into
entries and wake-ups.
"""

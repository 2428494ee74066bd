"""Motor-unit potentials the way electromyographers read them: a record decomposed into motor units
(``decompose.py``), each unit's template measured (``measures.py``: duration, amplitude, phases, turns, area,
thickness, size index), compared with an expert's decomposition (``agreement.py``, ``eaf.py``: EMGLAB annotation
files), and drawn (``figure.py``). Plain numpy and scipy: no torch."""

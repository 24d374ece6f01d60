"""A small procedural world of captioned shapes in which OSTAF's effect is measurable on a CPU.

`scenes` samples and captions scenes, `drawing` renders them, `oracle` reads the attributes
back from any image of this world (including a small diffusion model's imperfect ones).
"""

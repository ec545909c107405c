"""fsm/lazymodule.py: a deferred module stays unexecuted through imports of it, and
behaves as the real module from its first use (issue 17)."""

from __future__ import annotations

from guest import fresh_python

# colorsys: a standard-library module nothing imports at start-up, with a module-level
# constant and functions, so both the copy and the real module can be checked.
PROBE = r"""
import sys
from fsm import lazymodule
assert lazymodule.defer("colorsys") is True
assert lazymodule.defer("colorsys") is False          # already registered
import colorsys                                       # as a dependency's import would
print("executed before use:", lazymodule.is_loaded("colorsys"))
held = colorsys
print("value:", held.rgb_to_hsv(1.0, 0.0, 0.0), held.ONE_THIRD)
print("executed after use:", lazymodule.is_loaded("colorsys"))
real = sys.modules["colorsys"]
print("same functions:", real is not held and real.rgb_to_hsv is held.rgb_to_hsv)
print("already imported:", lazymodule.defer("os"), "submodule:", lazymodule.defer("os.path"))
"""


def test_a_deferred_module_runs_at_its_first_attribute_read_not_at_import():
    lines = fresh_python(PROBE).splitlines()
    assert lines == ["executed before use: False",
                     "value: (0.0, 1.0, 1.0) 0.3333333333333333",
                     "executed after use: True",
                     "same functions: True",
                     "already imported: False submodule: False"]


def test_the_machine_defers_inspect_and_transitions_still_finds_methods():
    """transitions' one use of inspect (ismethod on a model's on_enter_ callbacks) works
    through the placeholder, and loads the real module only then."""
    probe = r"""
import sys
from fsm import lazymodule, machine
import transitions.core as core
print(lazymodule.is_loaded("inspect"))
class Model:
    def on_enter_B(self):
        self.entered = True
m = Model()
core.Machine(model=m, states=["A", "B"], initial="A", transitions=[["go", "A", "B"]])
m.go()
print(m.entered, lazymodule.is_loaded("inspect"))
"""
    assert fresh_python(probe).splitlines() == ["False", "True True"]

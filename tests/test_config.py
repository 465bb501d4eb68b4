from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.errors import ConfigCompositionException, MissingConfigException

from tinysnn.config import (
    ConfigError,
    Integrator,
    LearningConfig,
    ModelConfig,
    QuantConfig,
    QuantTarget,
    Rule,
    Scheme,
    SimConfig,
    Topology,
    TrainConfig,
    register_configs,
    validate,
)

CONF = Path(__file__).resolve().parents[1] / "conf"
# the train config's groups (conf/optimize/ holds tinysnn.optimize's presets)
GROUPS = {group.name: sorted(p.stem for p in group.glob("*.yaml")) for group in CONF.iterdir()
          if group.is_dir() and group.name != "optimize"}

register_configs()


def compose_with(*overrides: str):
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return compose(config_name="config", overrides=list(overrides))


def test_groups_exist():
    assert {"dataset", "model", "learning", "run"} <= set(GROUPS)


#: quantization options need a scheme that quantizes and an FP32 reference run
QUANT_CONTEXT = {"precision": ["scheme=itq", "quant.reference=outputs/fp32"],
                 "rounding": ["scheme=itq", "precision=q8", "quant.reference=outputs/fp32"],
                 "target": ["scheme=ptq", "precision=q8", "quant.reference=outputs/fp32"],
                 "scheme": ["quant.reference=outputs/fp32"]}


@pytest.mark.parametrize("group,option", [(g, o) for g, options in GROUPS.items() for o in options])
def test_every_group_option_composes_and_validates(group, option):
    config = validate(compose_with(*QUANT_CONTEXT.get(group, []), f"{group}={option}"))
    assert isinstance(config, TrainConfig)


@pytest.mark.parametrize("scheme", ["ptq", "itq"])
@pytest.mark.parametrize("precision,bits", [("fp32", None), ("q16", 16), ("q8", 8), ("q4", 4)])
@pytest.mark.parametrize("rounding", ["truncate", "nearest", "stochastic"])
@pytest.mark.parametrize("target", ["w", "wn"])
def test_quant_groups_fill_one_typed_node(scheme, precision, bits, rounding, target):
    config = validate(compose_with(f"scheme={scheme}", f"precision={precision}", f"rounding={rounding}",
                                   f"target={target}", "quant.reference=outputs/fp32"))
    quant = config.quant
    chosen = (quant.scheme.value, quant.bits, quant.rounding.value, quant.target.value)
    assert chosen == (scheme, bits, rounding, target)
    assert quant.active == (bits is not None)


def test_any_other_width_by_config():
    assert validate(compose_with("scheme=itq", "quant.bits=7", "quant.reference=r")).quant.bits == 7


def test_group_options_select_what_they_name():
    config = validate(compose_with("dataset=fashion_mnist", "model=tinysnn", "run=default"))
    assert config.dataset.name.value == "fashion_mnist"
    assert config.model.topology.value == "tinysnn"
    assert config.run.n_train is None


@pytest.mark.parametrize("override,key", [
    ("sim.max_rate_hz=-5", "sim.max_rate_hz"),
    ("model.n_neurons=0", "model.n_neurons"),
    ("run.replicas=0", "run.replicas"),
    ("run.checkpoint_minutes=-1", "run.checkpoint_minutes"),
    ("sim.dt_ms=0", "sim.dt_ms"),
    ("model.exc.tau_mem_ms=-1", "model.exc.tau_mem_ms"),
    ("sim.max_rate_hz=2000", "sim.max_rate_hz"),
    ("learning.nu_post=-0.1", "learning.nu_post"),
    ("learning.nu_post_final=0", "learning.nu_post_final"),
    ("quant.bits=8", "quant.bits"),
    ("scheme=ptq", "quant.reference"),
])
def test_impossible_values_are_rejected_naming_the_key(override, key):
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        validate(compose_with(override))


def test_unknown_dataset_is_rejected_at_composition():
    with pytest.raises(ConfigCompositionException) as error:
        compose_with("dataset.name=cifar")
    cause = str(error.value.__cause__)
    assert "cifar" in cause and "mnist" in cause and "fashion_mnist" in cause


def test_unknown_dataset_option_lists_the_available_ones():
    with pytest.raises(MissingConfigException, match="fashion_mnist"):
        compose_with("dataset=cifar")


@pytest.mark.parametrize("integrator", [Integrator.closed_form, Integrator.compiled])
def test_tinysnn_integrators_are_refused_where_they_do_not_apply(integrator):
    tinysnn = dict(model=ModelConfig(topology=Topology.tinysnn), learning=LearningConfig(rule=Rule.adaptive))
    closed = SimConfig(integrator=integrator)
    TrainConfig(sim=closed, **tinysnn)
    with pytest.raises(ConfigError, match="sim.integrator"):
        TrainConfig(sim=closed)  # the baseline's per-step kernel
    qwn = QuantConfig(scheme=Scheme.itq, bits=8, target=QuantTarget.wn, reference="r")
    if integrator is Integrator.compiled:  # it rounds u and θ as the step path does
        TrainConfig(sim=closed, quant=qwn, **tinysnn)
        return
    with pytest.raises(ConfigError, match="qWN re-rounds u"):
        TrainConfig(sim=closed, quant=qwn, **tinysnn)


def test_auto_is_the_default_and_applies_everywhere():
    assert SimConfig().integrator is Integrator.auto
    TrainConfig(quant=QuantConfig(scheme=Scheme.itq, bits=8, target=QuantTarget.wn, reference="r"))  # the baseline

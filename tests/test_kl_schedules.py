import pytest

from modeling_twrvae.trainer.kl_schedules import KLSchedule


def test_constant():
    assert [KLSchedule("constant", 0.7)(step) for step in (0, 10, 10**6)] == [0.7, 0.7, 0.7]


def test_linear_annealing():
    schedule = KLSchedule("linear", 1.0, anneal_steps=100)
    assert schedule(0) == 0.0 and schedule(50) == pytest.approx(0.5) and schedule(100) == 1.0 and schedule(500) == 1.0


def test_linear_annealing_from_a_start_weight_as_the_twr_vae_dialogue_code():
    schedule = KLSchedule("linear", 1.0, anneal_steps=90, start_weight=0.1)
    assert [schedule(step) for step in (0, 45, 90, 1000)] == pytest.approx([0.1, 0.55, 1.0, 1.0])


def test_sigmoid_annealing():
    schedule = KLSchedule("sigmoid", 2.0, anneal_steps=1000)
    assert schedule(500) == pytest.approx(1.0)
    assert schedule(0) < 0.02 and schedule(1000) > 1.98
    values = [schedule(step) for step in range(0, 1001, 50)]
    assert values == sorted(values)


def test_cyclical_annealing():
    schedule = KLSchedule("cyclical", 1.0, total_steps=400, cycles=4, ratio=0.5)
    # each cycle of 100 steps: 0 -> 1 over 50 steps, then flat
    assert [schedule(step) for step in (0, 25, 50, 99, 100, 125, 399)] == pytest.approx([0, 0.5, 1, 1, 0, 0.5, 1])


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"name": "exponential"}, "`kl_schedule` must be one of"),
        ({"name": "linear", "anneal_steps": 0}, "`kl_anneal_steps` must be >= 1"),
        ({"name": "cyclical", "total_steps": None}, "needs the number of training steps"),
        ({"name": "cyclical", "total_steps": 10, "ratio": 0}, r"`kl_cycle_ratio` must be in \(0, 1\]"),
        ({"name": "constant", "max_weight": -1}, "`kl_weight` must be >= 0"),
        ({"name": "linear", "start_weight": 2.0}, r"`kl_start_weight` must be in \[0, kl_weight=1.0\]"),
        ({"name": "sigmoid", "start_weight": 0.1}, "applies to linear or cyclical annealing only"),
    ],
)
def test_bad_values(kwargs, message):
    with pytest.raises(ValueError, match=message):
        KLSchedule(**kwargs)


def test_cyclical_annealing_from_a_start_weight_as_fu_et_als_ptb_code():
    # CYC:language_model/train_text_cyc_ptb.py:167-178: each cycle restarts at 0.1 and ramps over 4.5 of its 10 epochs
    schedule = KLSchedule("cyclical", 1.0, total_steps=4000, cycles=4, ratio=0.45, start_weight=0.1)
    assert [schedule(step) for step in (0, 1000, 2000, 3000)] == pytest.approx([0.1] * 4)
    assert schedule(225) == pytest.approx(0.55) and schedule(450) == pytest.approx(1.0)
    assert schedule(999) == pytest.approx(1.0) and schedule(1225) == pytest.approx(0.55)
    assert KLSchedule("cyclical", 1.0, total_steps=4000)(250) == pytest.approx(0.5)  # the default: from 0, ratio 0.5

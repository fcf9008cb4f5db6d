"""PID: speed-step response on a first-order vehicle, anti-windup, scheduling, derivative, log."""

import math

import numpy as np
import pytest

from control.pid import PID

DT_S = 0.05  # 20 Hz control
MAX_ACCEL_MPS2, MAX_DECEL_MPS2 = 3.0, 8.0
GAINS = dict(kp=1.0, ki=0.25, kd=0.0)  # as in conf/control/*.yaml


def speed_pid(**overrides) -> PID:
    kwargs = dict(GAINS, output_min=-MAX_DECEL_MPS2, output_max=MAX_ACCEL_MPS2, integral_limit=1.0)
    kwargs.update(overrides)
    return PID(**kwargs)


def simulate_speed_step(pid: PID, target_mps: float, duration_s: float, v0_mps: float = 0.0):
    """First-order vehicle v' = u with the actuator limits; returns (speeds (T,), integrals (T,))."""
    v = v0_mps
    speeds, integrals = [], []
    for _ in range(round(duration_s / DT_S)):
        u = pid.update(target_mps - v, DT_S, speed_mps=v)
        assert -MAX_DECEL_MPS2 <= u <= MAX_ACCEL_MPS2
        v += u * DT_S
        speeds.append(v)
        integrals.append(pid.integral)
    return np.array(speeds), np.array(integrals)


def test_settles_on_speed_step():
    speeds, integrals = simulate_speed_step(speed_pid(), target_mps=15.0, duration_s=15.0)
    assert abs(speeds[-1] - 15.0) < 0.2
    assert speeds.max() - 15.0 < 0.6  # measured 0.39 m/s with these gains
    # The actuator limit holds the first ~4 s: the car accelerates at max_accel meanwhile.
    assert speeds[round(3.0 / DT_S) - 1] == pytest.approx(3.0 * MAX_ACCEL_MPS2, rel=1e-6)
    assert np.all(np.abs(integrals) <= 1.0 + 1e-12)


def test_settles_on_speed_drop():
    speeds, _ = simulate_speed_step(speed_pid(), target_mps=5.0, duration_s=15.0, v0_mps=25.0)
    assert abs(speeds[-1] - 5.0) < 0.2
    assert speeds.min() > 5.0 - 1.0  # measured 0.74 m/s below after a 20 m/s drop


def test_anti_windup_limits_overshoot_after_long_saturation():
    # 30 m/s at 3 m/s^2 keeps the actuator saturated for ~9 s.
    target = 30.0
    with_aw, integrals = simulate_speed_step(speed_pid(), target, 25.0)
    without_aw, integrals_no_aw = simulate_speed_step(
        speed_pid(anti_windup=False, integral_limit=math.inf), target, 25.0
    )
    # While saturated in the direction of the error the integral does not grow at all.
    assert np.all(integrals[: round(8.0 / DT_S)] == 0.0)
    assert np.all(np.abs(integrals) <= 1.0 + 1e-12)
    assert integrals_no_aw.max() > 10.0  # what it prevents: a wound-up integral
    overshoot_aw = with_aw.max() - target
    overshoot_no_aw = without_aw.max() - target
    assert overshoot_aw < 0.6
    assert overshoot_no_aw > 5.0 * overshoot_aw
    assert abs(with_aw[-1] - target) < 0.1


def test_integral_is_clamped_even_without_saturation():
    # Huge output range: never saturates, so only the clamp bounds the integral.
    pid = PID(kp=0.0, ki=1.0, kd=0.0, output_min=-100.0, output_max=100.0, integral_limit=0.5)
    for _ in range(100):
        pid.update(1.0, DT_S)
    assert pid.integral == pytest.approx(0.5)
    assert pid.log["output"] == pytest.approx(0.5)


def test_integral_unwinds_when_error_reverses_while_saturated():
    pid = PID(kp=0.0, ki=1.0, kd=0.0, output_min=-1.0, output_max=1.0, integral_limit=5.0)
    for _ in range(10):
        pid.update(1.0, DT_S, feedforward=0.9)
    i_before = pid.integral
    pid.update(-1.0, DT_S, feedforward=5.0)  # saturated high, but the error asks for less
    assert pid.integral == pytest.approx(i_before - DT_S)


def test_derivative_has_no_kick_on_first_call_and_reset():
    pid = PID(kp=0.0, ki=0.0, kd=2.0, output_min=-100.0, output_max=100.0, integral_limit=1.0)
    assert pid.update(5.0, DT_S) == 0.0
    assert pid.update(6.0, DT_S) == pytest.approx(2.0 * (6.0 - 5.0) / DT_S)
    assert pid.log["d"] == pytest.approx(2.0 * (6.0 - 5.0) / DT_S)
    pid.reset()
    assert pid.update(100.0, DT_S) == 0.0
    assert pid.integral == 0.0


def test_log_terms_add_up_and_output_is_clipped():
    pid = PID(kp=2.0, ki=1.0, kd=0.1, output_min=-1.0, output_max=1.0, integral_limit=1.0)
    pid.update(0.1, DT_S)
    out = pid.update(0.2, DT_S, feedforward=0.3)
    log = pid.log
    assert set(log) == {"p", "i", "d", "ff", "output"}
    assert out == log["output"]
    assert log["p"] + log["i"] + log["d"] + log["ff"] == pytest.approx(out)
    out = pid.update(10.0, DT_S)
    assert out == 1.0 and pid.log["output"] == 1.0


def test_gains_scheduled_by_speed():
    pid = PID(
        kp=2.0,
        ki=0.5,
        kd=0.0,
        output_min=-10.0,
        output_max=10.0,
        integral_limit=1.0,
        speed_breakpoints_mps=[0.0, 10.0, 30.0],
        kp_schedule=[1.0, 1.0, 0.5],
        ki_schedule=[2.0, 1.0, 1.0],
    )
    assert pid.gains(0.0) == pytest.approx((2.0, 1.0))
    assert pid.gains(20.0) == pytest.approx((1.5, 0.5))
    assert pid.gains(50.0) == pytest.approx((1.0, 0.5))  # held beyond the last breakpoint
    assert pid.update(1.0, DT_S, speed_mps=30.0) == pytest.approx(1.0 + 0.5 * DT_S)


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(output_min=1.0, output_max=-1.0),
        dict(integral_limit=0.0),
        dict(kp=-1.0),
        dict(kp_schedule=[1.0, 2.0]),  # no breakpoints
        dict(speed_breakpoints_mps=[0.0, 10.0], kp_schedule=[1.0]),
        dict(speed_breakpoints_mps=[10.0, 0.0], kp_schedule=[1.0, 1.0]),
    ],
)
def test_rejects_bad_parameters(kwargs):
    with pytest.raises(ValueError):
        speed_pid(**kwargs)


def test_rejects_bad_inputs():
    pid = speed_pid()
    with pytest.raises(ValueError):
        pid.update(1.0, 0.0)
    with pytest.raises(ValueError):
        pid.update(math.nan, DT_S)

import numpy as np
import pytest

from perception.tracking import Tracker, associate, mahalanobis_cost
from perception.types import PEDESTRIAN, VEHICLE, EgoState, WorldModel

FRAME_DT_S = 0.1  # 10 Hz camera


def make_tracker(**overrides) -> Tracker:
    args = dict(
        process_accel_std_mps2=2.0,
        meas_std_m=0.3,
        gate_m=5.0,
        gate_sigmas=4.0,
        min_hits=3,
        max_misses=3,
        max_position_std_m=10.0,
        init_speed_std_mps=15.0,
    )
    args.update(overrides)
    return Tracker(**args)


def feed(tracker, t_s, xy, cls=VEHICLE, sigma=None):
    xy = np.asarray(xy, dtype=float).reshape(-1, 2)
    n = len(xy)
    tracker.update(t_s, xy, sigma, np.full(n, cls), np.full(n, 0.9))
    return tracker.tracks()


def test_constant_velocity_converges():
    rng = np.random.default_rng(0)
    tracker = make_tracker()
    v_true = np.array([8.0, -3.0])
    for k in range(40):
        t = k * FRAME_DT_S
        out = feed(tracker, t, np.array([20.0, 5.0]) + v_true * t + rng.normal(0, 0.3, 2))
    assert len(out["ids"]) == 1 and len(tracker) == 1
    np.testing.assert_allclose(out["v_mps"][0], v_true, atol=0.5)
    np.testing.assert_allclose(out["xy_m"][0], np.array([20.0, 5.0]) + v_true * 3.9, atol=0.4)
    assert out["yaw_rad"][0] == pytest.approx(np.arctan2(-3.0, 8.0), abs=0.1)
    np.testing.assert_allclose(out["size_m"][0], [4.5, 1.8])
    assert out["scores"][0] == pytest.approx(0.9)


def test_a_new_track_reports_its_speed_as_unknown_until_it_settles():
    tracker = make_tracker(min_hits=1, stop_frames=0)
    rng = np.random.default_rng(3)
    stds = []
    for k in range(20):  # a car coming at 10 m/s
        out = feed(
            tracker, k * FRAME_DT_S, np.array([60.0 - 10.0 * k * FRAME_DT_S, 2.0]) + rng.normal(0, 0.3, 2)
        )
        stds.append(out["v_std_mps"][0])
    assert stds[0] == pytest.approx(15.0)  # born at rest with init_speed_std_mps
    assert stds[-1] < 1.0 and all(a >= b for a, b in zip(stds, stds[1:], strict=False))
    tracker = make_tracker()
    parked_speeds(tracker)  # a car held parked knows it stands still
    assert tracker.tracks()["v_std_mps"].tolist() == [0.0]


def test_confirmation_takes_min_hits_and_output_fits_world_model():
    tracker = make_tracker(min_hits=3)
    for k in range(3):
        out = feed(tracker, k * FRAME_DT_S, [10.0, 0.0])
        assert len(out["ids"]) == (1 if k == 2 else 0)
    world = WorldModel(ego=EgoState(0.0, 0.0, 0.0, 0.0), t_s=0.2, **out)
    assert world.tracks()[0].x_m == pytest.approx(10.0, abs=0.05)
    empty = make_tracker().tracks()
    assert (
        empty["xy_m"].shape == (0, 2) and empty["size_m"].shape == (0, 2) and empty["ids"].dtype == np.int64
    )


def test_crossing_objects_keep_their_ids():
    rng = np.random.default_rng(1)
    tracker = make_tracker(gate_m=3.0)
    start = np.array([[0.0, 0.0], [0.0, 10.0]])
    v = np.array([[10.0, 5.0], [10.0, -5.0]])  # they meet at (10, 5) at t = 1 s
    first_ids = None
    for k in range(25):
        t = k * FRAME_DT_S
        truth = start + v * t
        order = [1, 0] if k % 2 else [0, 1]  # detections come in any order
        out = feed(tracker, t, truth[order] + rng.normal(0, 0.1, (2, 2)))
        if len(out["ids"]) == 2 and np.linalg.norm(truth[0] - truth[1]) > 1.0:
            # Which id is nearest each object now (ill-posed while they overlap)?
            d = np.linalg.norm(out["xy_m"][:, None] - truth[None], axis=2)
            ids = out["ids"][np.argmin(d, axis=0)]
            first_ids = ids if first_ids is None else first_ids
            np.testing.assert_array_equal(ids, first_ids)
    assert first_ids is not None and len(set(first_ids.tolist())) == 2


def greedy(cost, allowed):
    """Nearest pair first: what the Hungarian method must beat."""
    cost = np.where(allowed, cost, np.inf)
    pairs = []
    while np.isfinite(cost).any():
        i, j = np.unravel_index(np.argmin(cost), cost.shape)
        pairs.append((int(i), int(j)))
        cost[i, :], cost[:, j] = np.inf, np.inf
    return pairs


def test_hungarian_beats_greedy():
    # Tracks at x = 0 and 2, detections at 1.2 and 3: greedy takes the closest pair (track 1 <-> 1.2)
    # and leaves track 0 only the detection at 3, out of the 2.5 m gate.
    track_xy = np.array([[0.0, 0.0], [2.0, 0.0]])
    det_xy = np.array([[1.2, 0.0], [3.0, 0.0]])
    d2, dist = mahalanobis_cost(track_xy, np.tile(np.eye(2), (2, 1, 1)), det_xy, np.ones(2))
    np.testing.assert_allclose(d2, dist**2 / 2)  # S = 2 I
    allowed = dist <= 2.5
    assert greedy(d2, allowed) == [(1, 0)]
    rows, cols = associate(d2, allowed)
    assert rows.tolist() == [0, 1] and cols.tolist() == [0, 1]

    # The same through the tracker: two confirmed still tracks keep both detections, no new track.
    tracker = make_tracker(meas_std_m=1.0, gate_m=2.5, gate_sigmas=10.0, min_hits=1)
    for k in range(5):
        out = feed(tracker, k * FRAME_DT_S, track_xy)
    ids = out["ids"].copy()
    out = feed(tracker, 0.5, det_xy)
    assert len(tracker) == 2
    np.testing.assert_array_equal(out["ids"], ids)
    assert out["xy_m"][0, 0] > 0.2 and out["xy_m"][1, 0] > 2.2  # each pulled towards its own detection


def test_class_gates_association():
    tracker = make_tracker(min_hits=1)
    feed(tracker, 0.0, [10.0, 0.0], cls=VEHICLE)
    out = feed(tracker, 0.1, [10.0, 0.0], cls=PEDESTRIAN)
    # The pedestrian does not update the vehicle track at the same place: it starts its own.
    assert len(tracker) == 2
    assert out["class_ids"].tolist() == [VEHICLE, PEDESTRIAN] and out["ids"].tolist() == [0, 1]
    np.testing.assert_array_equal(out["xy_m"], [[10.0, 0.0], [10.0, 0.0]])


def test_a_second_box_on_a_tracked_object_starts_no_track():
    tracker = make_tracker(min_hits=1)
    feed(tracker, 0.0, [10.0, 0.0])
    # Two boxes on the car (1.2 m apart): one updates its track, the other is no new car ...
    feed(tracker, 0.1, [[10.0, 0.0], [10.2, 1.2]])
    assert len(tracker) == 1
    # ... but a car in the next lane (3.5 m over) and a pedestrian beside the car are.
    out = feed(tracker, 0.2, [[10.0, 0.0], [10.0, 3.5]])
    tracker.update(
        0.3, np.array([[10.0, 0.0], [10.0, 1.2]]), None, np.array([VEHICLE, PEDESTRIAN]), np.full(2, 0.9)
    )
    assert len(out["ids"]) == 2 and len(tracker) == 3
    # A detection beside a track that missed the frame (the object moved off its prediction) may start one.
    lone = make_tracker(min_hits=1, gate_m=1.0)
    feed(lone, 0.0, [10.0, 0.0])
    feed(lone, 0.1, [10.0, 1.2])
    assert len(lone) == 2


def test_missed_detections_keep_the_track_up_to_max_misses():
    tracker = make_tracker(max_misses=3)
    for k in range(10):
        out = feed(tracker, k * FRAME_DT_S, [5.0 + 10.0 * k * FRAME_DT_S, 0.0])
    (track_id,) = out["ids"]
    for miss in range(1, 5):
        out = feed(tracker, (9 + miss) * FRAME_DT_S, np.zeros((0, 2)))
        if miss <= 3:
            assert out["ids"].tolist() == [track_id]
            assert out["xy_m"][0, 0] == pytest.approx(5.0 + 10.0 * (0.9 + 0.1 * miss), abs=0.3)  # coasting
        else:
            assert len(out["ids"]) == 0 and len(tracker) == 0


def test_a_track_out_of_the_cameras_sight_survives_longer_than_one_missed_in_sight():
    """Two cars tracked, then no detections: the one where a camera sees (x < 20) dies after
    max_misses, the one out of sight (beside the ego, say) after max_unseen_misses."""
    tracker = make_tracker(max_misses=3, max_unseen_misses=8)
    for k in range(10):
        feed(tracker, k * FRAME_DT_S, [[10.0, 0.0], [30.0, 5.0]])
    ids = tracker.tracks()["ids"].tolist()
    alive = []
    for miss in range(1, 11):
        t = (9 + miss) * FRAME_DT_S
        tracker.update(
            t, np.zeros((0, 2)), None, np.zeros(0), np.zeros(0), in_sight=lambda xy: xy[:, 0] < 20.0
        )
        alive.append(tracker.tracks()["ids"].tolist())
    assert alive[2] == ids and alive[3] == ids[1:]  # in sight: 3 misses kept, the 4th deletes it
    assert alive[7] == ids[1:] and alive[8] == []  # out of sight: 8 kept
    with pytest.raises(ValueError, match="max_unseen_misses"):
        make_tracker(max_misses=3, max_unseen_misses=2)


def test_a_track_found_again_keeps_its_id():
    tracker = make_tracker(max_misses=3)
    for k in range(10):
        out = feed(tracker, k * FRAME_DT_S, [5.0 + 10.0 * k * FRAME_DT_S, 0.0])
    (track_id,) = out["ids"]
    for k in range(10, 13):
        feed(tracker, k * FRAME_DT_S, np.zeros((0, 2)))
    out = feed(tracker, 1.3, [5.0 + 13.0, 0.0])
    assert out["ids"].tolist() == [track_id] and len(tracker) == 1


def test_false_positive_seen_once_is_never_confirmed():
    tracker = make_tracker(min_hits=2)
    seen = set()
    for k in range(10):
        xy = [[10.0, 0.0], [30.0, 8.0]] if k == 4 else [[10.0, 0.0]]
        out = feed(tracker, k * FRAME_DT_S, xy)
        seen |= set(out["ids"].tolist())
        if k == 4:
            assert len(tracker) == 2  # the false positive lives as a tentative track ...
        if k == 5:
            assert len(tracker) == 1  # ... and dies at its first miss
    assert seen == {0}


def test_predict_between_frames_moves_tracks_by_v_dt():
    tracker = make_tracker()
    for k in range(10):
        out = feed(tracker, k * FRAME_DT_S, [2.0 * k * FRAME_DT_S, 1.0 - 1.0 * k * FRAME_DT_S])
    xy, v = out["xy_m"][0], out["v_mps"][0]
    tracker.predict(0.95)  # a 20 Hz control tick between 10 Hz frames
    out = tracker.tracks()
    np.testing.assert_allclose(out["xy_m"][0], xy + v * 0.05)
    np.testing.assert_allclose(out["v_mps"][0], v)
    tracker.predict(0.95)  # same time: nothing moves
    np.testing.assert_allclose(tracker.tracks()["xy_m"][0], xy + v * 0.05)
    with pytest.raises(ValueError):
        tracker.predict(0.9)


def test_coasting_track_dies_when_its_position_variance_grows():
    tracker = make_tracker(max_misses=1000, max_position_std_m=2.0)
    for k in range(5):
        feed(tracker, k * FRAME_DT_S, [0.0, 0.0])
    t = 0.4
    while len(tracker) and t < 60.0:
        t += 0.05
        tracker.predict(t)
    assert len(tracker) == 0 and t < 60.0


def test_ids_increase_are_never_reused_and_reset_restarts():
    tracker = make_tracker(max_misses=1, min_hits=1)
    all_ids = []
    t = 0.0
    for _ in range(3):  # an object appears, is tracked, goes away and is deleted; again at the same place
        for _ in range(3):
            all_ids += feed(tracker, t, [10.0, 0.0])["ids"].tolist()
            t += FRAME_DT_S
        for _ in range(2):
            feed(tracker, t, np.zeros((0, 2)))
            t += FRAME_DT_S
        assert len(tracker) == 0
    assert sorted(set(all_ids)) == [0, 1, 2]
    tracker.reset()
    assert tracker.t_s is None and feed(tracker, 0.0, [1.0, 1.0])["ids"].tolist() == [0]


def test_deterministic_and_ignores_non_finite_detections():
    def run():
        rng = np.random.default_rng(5)
        tracker = make_tracker()
        for k in range(15):
            xy = rng.uniform(0, 30, (4, 2))
            xy[0] = [np.nan, np.nan]  # no position (e.g. a box above the horizon without a distance)
            sigma = rng.uniform(0.2, 1.0, 4)
            tracker.update(k * FRAME_DT_S, xy, sigma, np.zeros(4, dtype=int), np.ones(4))
        return tracker.tracks(), len(tracker)

    (a, na), (b, nb) = run(), run()
    assert na == nb
    for key in a:
        np.testing.assert_array_equal(a[key], b[key])
    assert np.isfinite(a["xy_m"]).all()


def test_bad_arguments_fail():
    with pytest.raises(ValueError):
        make_tracker(min_hits=0)
    with pytest.raises(ValueError):
        make_tracker(gate_m=0.0)


# ---------------------------------------------------------------------------- stationary hysteresis
def parked_speeds(tracker, frames: int = 120, sigma: float = 0.6, seed: int = 1) -> tuple[np.ndarray, set]:
    """Reported speeds of one parked car 40 m away, detected every frame with `sigma` of noise, and
    the track ids reported for it."""
    rng = np.random.default_rng(seed)
    speeds, ids = [], set()
    for k in range(frames):
        z = np.array([40.0, 3.0]) + rng.normal(0.0, sigma, 2)
        out = feed(tracker, k * FRAME_DT_S, z, sigma=np.array([sigma]))
        ids.update(out["ids"].tolist())
        if len(out["ids"]):
            speeds.append(float(np.hypot(*out["v_mps"][0])))
    return np.array(speeds), ids


def test_a_parked_car_stays_parked():
    held, held_ids = parked_speeds(make_tracker())
    free, _ = parked_speeds(make_tracker(stop_frames=0))  # the constant-velocity model alone
    assert free[10:].max() > 0.5  # noise alone makes it a moving car now and then
    assert (held[10:] == 0.0).all()  # held still from its first frames on
    assert len(held_ids) == 1  # one track all along: no noisy detection restarts or splits it


def test_a_held_car_that_drives_off_moves_again_and_keeps_its_id():
    tracker = make_tracker()
    rng = np.random.default_rng(2)
    for k in range(30):  # parked for 3 s
        out = feed(tracker, k * FRAME_DT_S, np.array([40.0, 3.0]) + rng.normal(0.0, 0.3, 2))
    (track_id,) = out["ids"]
    assert out["v_mps"][0].tolist() == [0.0, 0.0]
    for k in range(30, 60):  # then drives off at 6 m/s along x
        t = k * FRAME_DT_S
        out = feed(tracker, t, np.array([40.0 + 6.0 * (t - 2.9), 3.0]) + rng.normal(0.0, 0.3, 2))
    assert out["ids"].tolist() == [track_id]
    np.testing.assert_allclose(out["v_mps"][0], [6.0, 0.0], atol=1.0)


def test_a_standing_car_lies_along_the_heading_it_was_born_with_until_it_moves():
    """A car first seen standing (queued on a street heading north) lies along the heading the
    update gives it (the ego's), not across that street; once it drives off, along its velocity."""
    tracker = make_tracker()
    rng = np.random.default_rng(0)
    north = np.pi / 2
    for k in range(30):
        z = np.array([3.0, 40.0]) + rng.normal(0.0, 0.3, 2)
        tracker.update(k * FRAME_DT_S, z[None], None, np.array([VEHICLE]), np.array([0.9]), north)
    assert tracker.tracks()["yaw_rad"].tolist() == [north]
    assert tracker.tracks()["heading_seen"].tolist() == [False]  # (the planner may put it along the road)
    for k in range(30, 60):  # it drives off east
        t = k * FRAME_DT_S
        z = np.array([3.0 + 6.0 * (t - 2.9), 40.0]) + rng.normal(0.0, 0.3, 2)
        tracker.update(t, z[None], None, np.array([VEHICLE]), np.array([0.9]), north)
    assert tracker.tracks()["yaw_rad"][0] == pytest.approx(0.0, abs=0.2)
    assert tracker.tracks()["heading_seen"].tolist() == [True]


def test_the_noise_of_a_parked_cars_detections_seldom_turns_its_heading():
    """Its first velocity estimates are noise: a heading is taken only from a speed of 4 stds."""
    turned = 0
    for seed in range(50):
        tracker, rng = make_tracker(), np.random.default_rng(seed)
        for k in range(30):
            z = np.array([3.0, 40.0]) + rng.normal(0.0, 0.3, 2)
            tracker.update(k * FRAME_DT_S, z[None], None, np.array([VEHICLE]), np.array([0.9]), 0.5)
        turned += tracker.tracks()["yaw_rad"][0] != 0.5
    assert turned <= 2  # (at 2 stds: 19 of these 50)


def test_pedestrians_keep_the_constant_velocity_model():
    tracker = make_tracker()
    for k in range(40):  # walking slowly at 1 m/s, below the stop speed
        out = feed(tracker, k * FRAME_DT_S, [10.0 + 1.0 * k * FRAME_DT_S, 2.0], cls=PEDESTRIAN)
    np.testing.assert_allclose(out["v_mps"][0], [1.0, 0.0], atol=0.2)

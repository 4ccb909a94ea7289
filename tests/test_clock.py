"""The event clock: "now" from the telemetry stream, with an injected wall clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from collector.clock import EventClock

T0 = datetime(2026, 5, 4, 10, 0, tzinfo=UTC)


class Wall:
    """A wall clock the test moves by hand."""

    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def connected_clock(wall: Wall, **kw: float) -> EventClock:
    clock = EventClock(wall=wall, **kw)  # type: ignore[arg-type]
    clock.set_connected(True)
    return clock


def test_it_has_no_time_before_the_first_message() -> None:
    assert connected_clock(Wall()).now() is None


def test_it_takes_the_third_newest_terminal_time_of_a_batch() -> None:
    clock = connected_clock(Wall())
    batch = [("T-1", at(10)), ("T-2", at(20)), ("T-3", at(30)), ("T-4", at(3600))]
    assert clock.observe(batch) == at(20)
    assert clock.now() == at(20)


def test_one_terminal_with_many_messages_counts_once_towards_the_quorum() -> None:
    clock = connected_clock(Wall())
    batch = [("T-1", at(100)), ("T-1", at(200)), ("T-1", at(300)), ("T-2", at(5))]
    assert clock.observe(batch) == at(5)


def test_with_fewer_terminals_than_the_quorum_it_takes_the_oldest_newest_time() -> None:
    clock = connected_clock(Wall())
    assert clock.observe([("T-1", at(10)), ("T-2", at(40))]) == at(10)


def test_it_never_goes_back() -> None:
    clock = connected_clock(Wall())
    clock.observe([("T-1", at(50)), ("T-2", at(50)), ("T-3", at(50))])
    assert clock.observe([("T-1", at(10)), ("T-2", at(10)), ("T-3", at(10))]) == at(50)
    assert clock.now() == at(50)


def test_it_stands_still_while_the_broker_connection_is_down() -> None:
    wall = Wall()
    clock = connected_clock(wall)
    clock.observe([("T-1", at(0)), ("T-2", at(0)), ("T-3", at(0))])
    clock.set_connected(False)
    wall.t += 3600
    assert clock.now() == at(0)
    clock.set_connected(True)
    assert clock.now() == at(0)  # silence counts from the reconnection
    wall.t += 1
    assert clock.now() == at(0)  # still within the grace period


def test_it_goes_on_at_the_observed_rate_when_the_stream_falls_silent() -> None:
    wall = Wall()
    clock = connected_clock(wall, grace_s=2.0)
    fleet = ("T-1", "T-2", "T-3")
    clock.observe([(tid, at(0)) for tid in fleet])
    wall.t += 5  # five wall seconds in which the fleet's time moved by 50 s: rate 10
    clock.observe([(tid, at(50)) for tid in fleet])
    assert clock.rate == 10.0
    wall.t += 2
    assert clock.now() == at(50)  # grace period
    wall.t += 3
    assert clock.now() == at(80)  # 3 s past the grace, at 10 event seconds per second
    clock.observe([(tid, at(60)) for tid in fleet])  # late data does not pull it back
    assert clock.now() == at(80)


def test_it_extrapolates_at_wall_speed_until_a_rate_is_measured() -> None:
    wall = Wall()
    clock = connected_clock(wall, grace_s=0.0)
    clock.observe([("T-1", at(0)), ("T-2", at(0)), ("T-3", at(0))])
    wall.t += 30
    assert clock.now() == at(30)


def test_single_message_batches_from_a_terminal_ahead_do_not_move_the_clock() -> None:
    clock = connected_clock(Wall())
    fleet = [f"T-{i}" for i in range(10)]
    clock.observe([(tid, at(0)) for tid in fleet])
    assert clock.observe([("T-AHEAD", at(3 * 3600))]) == at(0)
    for step, tid in enumerate(fleet, start=1):
        clock.observe([(tid, at(step))])
        now = clock.observe([("T-AHEAD", at(3 * 3600 + step))])
        assert now is not None
        assert now < at(60)


def test_four_of_twenty_terminals_hours_ahead_do_not_move_the_clock() -> None:
    clock = connected_clock(Wall())
    batch = [(f"T-{i}", at(30)) for i in range(16)]
    batch += [(f"T-SKEW-{i}", at(4 * 3600)) for i in range(4)]
    assert clock.observe(batch) == at(30)


def test_a_terminal_consistently_off_is_corrected_by_its_offset() -> None:
    clock = connected_clock(Wall())
    fleet = [f"T-{i}" for i in range(8)]
    for step in range(6):
        t = step * 20
        clock.observe([(tid, at(t)) for tid in fleet] + [("T-LATE", at(t - 600))])
    assert abs(clock.offset("T-LATE").total_seconds() + 600) <= 20
    assert clock.offset("T-0") == timedelta(0)
    assert set(clock.offsets()) == {"T-LATE"}
    # once right again, the offset is dropped
    for step in range(6, 12):
        t = step * 20
        clock.observe([(tid, at(t)) for tid in fleet] + [("T-LATE", at(t))])
    assert clock.offset("T-LATE") == timedelta(0)
    assert clock.take_cleared() == ["T-LATE"]
    assert clock.take_cleared() == []


def test_terminals_that_fall_silent_leave_the_window_and_do_not_hold_the_clock() -> None:
    clock = connected_clock(Wall(), window=20)
    clock.observe([(f"T-{i}", at(0)) for i in range(20)])
    for step in range(1, 30):  # three terminals go on, the others fell silent
        clock.observe([(f"T-{i}", at(step * 10)) for i in range(3)])
    assert clock.now() == at(290)


def test_a_proven_link_bounds_the_run_on_to_the_last_proof() -> None:
    wall = Wall()
    clock = connected_clock(wall, grace_s=0.0)
    clock.observe([("T-1", at(0)), ("T-2", at(0)), ("T-3", at(0))])
    clock.prove()
    wall.t += 3
    clock.prove()
    wall.t += 100  # no proof since: the link may be dead
    assert clock.now() == at(3)
    clock.prove()
    assert clock.now() == at(103)

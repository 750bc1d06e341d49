"""Clock reading in the two official modes. The hour is the last word before the first `:`, the minute the
first word after it, the second the first word after the second `:` (when the GT has seconds).

- PixMo-Clocks mode (`bench=False`): "PM" anywhere adds 12 to the hour; minute / second tolerance 3.
- ClockBench mode (`bench=True`): GT hour 12 -> 0, minute 60 -> 0, predicted hour >= 12 -> -12, a GT hour
  of 0 also accepts 12, minute tolerance 1 (or a difference of exactly 59), and the whole time is also
  close when the total minutes differ by exactly 719 (12-hour wrap). "PM" is ignored.
Unanswerable GT (-1/-1/-1): right iff the prediction contains no ":".

Official-bug flag: in ClockBench mode the released evaluator reads an unassigned hour / minute when the
prediction has no parseable `H:MM` (it crashes, or reuses the previous example's values). Our default
scores such a prediction 0; `official=True` raises `ClockParseError` where the official code would fail.
"""

from __future__ import annotations


class ClockParseError(ValueError):
    pass


def clock_scores(prediction: str, hour: int, minute: int, second: int = -1, *, bench: bool = False,
                 official: bool = False) -> dict[str, bool]:
    pred = prediction.strip()
    tol = 1 if bench else 3
    if bench and hour == 12:
        hour = 0
    if bench and minute == 60:
        minute = 0
    if hour < 0 and minute < 0 and second < 0:
        declines = ":" not in pred
        return {"correctly_declines_to_answer": declines, "overall_close": declines, "overall_exact": declines}
    parts = pred.split(":")
    pred_hour = pred_minute = None
    try:
        pred_hour = int(parts[0].split()[-1])
        if "PM" in pred and not bench:
            pred_hour += 12
        if bench and pred_hour >= 12:
            pred_hour -= 12
        hour_correct = pred_hour == hour or (hour == 0 and pred_hour == 12)
    except (ValueError, IndexError):
        hour_correct = False
    try:
        pred_minute = int(parts[1].split()[0])
        if bench and pred_minute == 60:
            pred_minute = 0
        minute_correct = pred_minute == minute
        minute_close = abs(pred_minute - minute) <= tol or (bench and abs(pred_minute - minute) == 59)
    except (ValueError, IndexError):
        minute_correct = minute_close = False
    s = {"hour_correct": hour_correct, "minute_correct": minute_correct, "minute_close": minute_close}
    if second != -1:
        try:
            pred_second = int(parts[2].split()[0])
            s["second_correct"] = pred_second == second
            s["second_close"] = abs(pred_second - second) <= tol
        except (ValueError, IndexError):
            s["second_correct"] = s["second_close"] = False
        s["all_correct"] = minute_correct and hour_correct and s["second_correct"]
        s["all_close"] = minute_close and hour_correct and s["second_close"]
    else:
        s["all_correct"] = minute_correct and hour_correct
        s["all_close"] = minute_close and hour_correct
        if bench:
            if pred_hour is None or pred_minute is None:
                if official:
                    raise ClockParseError(f"no parseable H:MM in {prediction!r} (the official evaluator fails here)")
            elif abs(hour * 60 + minute - (pred_hour * 60 + pred_minute)) == 719:
                s["all_close"] = True
    s["overall_close"], s["overall_exact"] = s["all_close"], s["all_correct"]
    return s

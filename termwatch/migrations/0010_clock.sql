-- Each terminal's clock offset against the fleet's event clock, as the collector measured it:
-- positive when the terminal's clock runs ahead. Liveness judges a terminal's last message
-- by its corrected time; the card shows the offset; clock_skew incidents follow it.
CREATE TABLE terminal_clock (
    tid          text PRIMARY KEY,
    offset_s     double precision NOT NULL,
    measured_at  timestamptz NOT NULL   -- event time of the measurement
);

//! What a lossy link does to each frame, without any I/O: the decisions behind [`crate::relay`],
//! the user-space stand-in for `tc netem loss P% delay D` on kernels built without `sch_netem`.
//!
//! netem drops each packet independently with probability P and holds every other one for D
//! before it leaves; with a constant delay the order is kept. [`Impairment::admit`] makes the
//! drop decision from a seeded generator (so a chaos seed replays the same decisions for the
//! same frame sequence) and [`DelayLine`] holds what survives until it is due.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Loss and delay applied to every frame a node sends.
#[derive(Debug)]
pub struct Impairment {
    loss_percent: u8,
    delay: Duration,
    rng: StdRng,
}

impl Impairment {
    /// `loss_percent` (0–100) of frames dropped at random, the rest delayed by `delay`.
    pub fn new(loss_percent: u8, delay: Duration, seed: u64) -> Impairment {
        Impairment {
            loss_percent: loss_percent.min(100),
            delay,
            rng: StdRng::seed_from_u64(seed),
        }
    }

    /// The delay every surviving frame gets.
    pub fn delay(&self) -> Duration {
        self.delay
    }

    /// Whether the next frame survives (`false`: it is dropped).
    pub fn admit(&mut self) -> bool {
        self.rng.random_range(0..100u8) >= self.loss_percent
    }
}

/// Frames in flight on a link with a constant delay, released in the order they entered.
#[derive(Debug)]
pub struct DelayLine<T> {
    delay: Duration,
    queue: VecDeque<(Instant, T)>,
}

impl<T> DelayLine<T> {
    /// An empty line that holds each item for `delay`.
    pub fn new(delay: Duration) -> DelayLine<T> {
        DelayLine {
            delay,
            queue: VecDeque::new(),
        }
    }

    /// `item` entered the line at `now`.
    pub fn push(&mut self, now: Instant, item: T) {
        self.queue.push_back((now + self.delay, item));
    }

    /// When the oldest item is due, if any is in flight.
    pub fn next_due(&self) -> Option<Instant> {
        self.queue.front().map(|(due, _)| *due)
    }

    /// The oldest item, if it is due at `now`.
    pub fn pop_due(&mut self, now: Instant) -> Option<T> {
        match self.queue.front() {
            Some((due, _)) if *due <= now => self.queue.pop_front().map(|(_, item)| item),
            _ => None,
        }
    }

    /// Items in flight.
    pub fn len(&self) -> usize {
        self.queue.len()
    }

    /// Whether nothing is in flight.
    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dropped(loss: u8, seed: u64, frames: usize) -> usize {
        let mut link = Impairment::new(loss, Duration::ZERO, seed);
        (0..frames).filter(|_| !link.admit()).count()
    }

    #[test]
    fn loss_rate_matches_the_setting() {
        for seed in [1, 2, 3] {
            let lost = dropped(20, seed, 100_000);
            assert!((19_000..=21_000).contains(&lost), "seed {seed}: {lost}");
        }
        assert_eq!(dropped(0, 7, 10_000), 0);
        assert_eq!(dropped(100, 7, 10_000), 10_000);
        assert_eq!(dropped(250, 7, 100), 100, "clamped to 100%");
    }

    #[test]
    fn the_same_seed_makes_the_same_decisions() {
        let decisions = |seed| {
            let mut link = Impairment::new(20, Duration::ZERO, seed);
            (0..1_000).map(|_| link.admit()).collect::<Vec<_>>()
        };
        assert_eq!(decisions(42), decisions(42));
        assert_ne!(decisions(42), decisions(43));
    }

    #[test]
    fn delay_line_holds_each_item_for_the_delay_in_order() {
        let start = Instant::now();
        let ms = Duration::from_millis;
        let mut line = DelayLine::new(ms(50));
        assert_eq!(line.next_due(), None);
        line.push(start, "a");
        line.push(start + ms(10), "b");
        assert_eq!(line.len(), 2);
        assert_eq!(line.next_due(), Some(start + ms(50)));
        assert_eq!(line.pop_due(start + ms(49)), None);
        assert_eq!(line.pop_due(start + ms(50)), Some("a"));
        assert_eq!(line.pop_due(start + ms(59)), None);
        assert_eq!(line.next_due(), Some(start + ms(60)));
        assert_eq!(line.pop_due(start + ms(500)), Some("b"));
        assert!(line.is_empty());
    }
}

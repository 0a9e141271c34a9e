//! Helpers for the browser test: a headless Chromium runner and a reader for the DOM it dumps.

pub mod chromium;
pub mod dom;

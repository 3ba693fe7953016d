//! The one integration-test binary: every test runs the built `rtm-compute` against a real git
//! and a real Docker daemon.

mod support;

mod flexo;
mod hash;
mod materialize;
mod normalize;
mod operate;
mod record;
mod registry;
mod reproduce;
mod tidy;

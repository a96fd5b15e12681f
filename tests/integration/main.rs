//! Integration tests: one binary, so it links once. Every test runs the real server (in-process on
//! 127.0.0.1:0, or the built binary) and talks to it over real sockets.

mod browser;
mod browser_driver;
mod browser_exec;
mod browser_https;
mod browser_pages;
mod browser_proxy;
mod browser_restart;
mod browser_settings;
mod browser_status;
mod caching;
mod cli;
mod clients;
mod control;
mod exec;
mod file_cache;
mod https;
mod https_streams;
mod injection;
mod limits;
mod ports;
mod proxy;
mod reload;
mod routes;
mod security;
mod settings;
mod shutdown;
mod static_files;
mod support;
mod upstream;
mod watching;

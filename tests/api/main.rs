//! Black-box tests: each starts the real application on port 0 with its own fresh database and
//! talks HTTP to it, as ALCS would.

mod activate;
mod change_phone;
mod concurrency;
mod errors;
mod failures;
mod helpers;
mod language;
mod lock;
mod process;
mod read;
mod register;

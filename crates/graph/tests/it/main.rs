//! Integration tests of the Graph client against m365-sim over HTTPS (the sim's own CA is the
//! extra trust root, exactly as `m365.ca_file` would provide it).

mod doctor;
mod errors;
mod faults;
mod graph_calls;
mod keys;
mod secrets;
mod token;

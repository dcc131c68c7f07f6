//! The one meaning of every privileged and sensitive instruction. The
//! interpreter, the translator's callouts and the trap engine all call these
//! functions.

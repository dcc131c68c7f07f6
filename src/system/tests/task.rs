//! Hardware task switches (SDM Vol. 3 §7.3).

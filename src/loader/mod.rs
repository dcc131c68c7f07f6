//! Loading guest images into a [`Machine`]: Multiboot v1 kernels (ELF32 and
//! the a.out kludge) and flat binaries. STUB: filled by the loader work.

use crate::machine::Machine;
use thiserror::Error;

/// Why an image could not be loaded.
#[derive(Debug, Error)]
pub enum LoadError {
    #[error("not a Multiboot kernel: no Multiboot header in the first 8 KiB")]
    NoMultibootHeader,
    #[error("malformed image: {0}")]
    Malformed(String),
    #[error("image does not fit in guest RAM: {0}")]
    TooBig(String),
}

/// What the user gave besides the kernel image.
#[derive(Debug, Default, Clone)]
pub struct BootParams {
    /// The kernel's path as given on the command line (QEMU passes it as
    /// the first word of the Multiboot command line).
    pub kernel_path: String,
    /// `--append`.
    pub append: Option<String>,
    /// `--initrd` modules: (path as given, contents).
    pub modules: Vec<(String, Vec<u8>)>,
}

/// Loads a Multiboot kernel and sets the CPU up at its entry point.
pub fn load_multiboot(_m: &mut Machine, _image: &[u8], _params: &BootParams) -> Result<(), LoadError> {
    Err(LoadError::NoMultibootHeader)
}

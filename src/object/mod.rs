//! BPF objects: finding a config's object, loading it (so that one program
//! the kernel refuses does not take the rest down), and attaching each
//! program on its own.

pub mod alternatives;
pub mod attach;
pub mod btf;
pub mod constants;
pub mod embedded;
pub mod error;
pub mod kaddrs;
pub mod libbpf_log;
pub mod line_info;
pub mod load;
pub mod map_types;
pub mod program_info;
pub mod source;

pub use alternatives::UnusedProgram;
pub use error::{AttachError, LoadFailure, MapLookupError, ObjectError};
pub use load::{load_object, LoadedObject, ProgramState, ProgramStatus};
pub use source::{resolve_object, ObjectBytes};

include!(concat!(env!("OUT_DIR"), "/embedded_index.rs"));
pub mod skeletons {
    include!(concat!(env!("OUT_DIR"), "/skeletons.rs"));
}

//! The shape of one section of settings: a struct of optional fields, each read from a flag, an
//! environment variable (clap) and a key of the TOML file (serde), and merged with a lower layer.

/// Declares a section's settings struct and its merge. Each field is one setting: its `///` doc
/// is its `--help` text, its `#[arg(long, env = ..)]` its flag and variable, its name the file's
/// key; every field is an `Option`, unset in a layer that does not give it.
macro_rules! section {
    (
        $(#[$meta:meta])*
        pub struct $name:ident {
            $(
                $(#[$field_meta:meta])*
                pub $field:ident: $ty:ty,
            )*
        }
    ) => {
        #[derive(Debug, Default, Clone, clap::Args, serde::Deserialize)]
        $(#[$meta])*
        pub struct $name {
            $(
                $(#[$field_meta])*
                pub $field: $ty,
            )*
        }

        impl $name {
            /// `self` where set, else `lower`.
            pub(super) fn over(self, lower: Self) -> Self {
                Self {
                    $($field: self.$field.or(lower.$field),)*
                }
            }
        }
    };
}

//! One declaration per enum of the C ABI (issue 17 item 2): [`abi_enum!`] makes, from one table
//! of `Variant = number => "name"` lines, the enum with those numbers, `ALL`, `from_u32`,
//! `name` and `c_name` (the name NUL-terminated, what the `swo_*_name` functions return).
//!
//! The C header's `#define SWO_*` constants come from `src/ffi` (cbindgen reads literal
//! `pub const` items only, so they stay written there); `tests/abi_header.rs` checks them
//! against these tables both ways: every value of a table has its `#define` with its number,
//! and every `#define` of the prefix is a value of the table.
use std::ffi::CStr;

/// `text` (which must end in its one NUL) as a `CStr`, at compile time.
pub const fn cstr(text: &'static str) -> &'static CStr {
    match CStr::from_bytes_with_nul(text.as_bytes()) {
        Ok(c) => c,
        Err(_) => panic!("an ABI name holds a NUL"),
    }
}

/// `abi_enum! { #[derive(..)] pub enum Name { Variant = 0 => "name", ... } }`: the enum
/// (`#[repr(u32)]`, attributes and doc comments kept) and, in its `impl`:
/// - `ALL`: every value, in the table's order (numeric order: the tables are written so);
/// - `from_u32(number)`: the value with that number, `None` for any other;
/// - `name()`: its name; `c_name()`: the same, NUL-terminated, as a static `CStr`.
macro_rules! abi_enum {
    (
        $(#[$meta:meta])*
        $vis:vis enum $name:ident {
            $( $(#[$vmeta:meta])* $variant:ident = $value:literal => $text:literal, )+
        }
    ) => {
        $(#[$meta])*
        #[repr(u32)]
        $vis enum $name {
            $( $(#[$vmeta])* $variant = $value, )+
        }

        impl $name {
            /// Every value, in numeric order.
            pub const ALL: [$name; [$($value),+].len()] = [$($name::$variant),+];

            /// The value with this number, if there is one.
            pub const fn from_u32(value: u32) -> Option<$name> {
                match value {
                    $( $value => Some($name::$variant), )+
                    _ => None,
                }
            }

            /// Its name (the C ABI's, as the `swo_*_name` functions and the reports give it).
            pub const fn name(self) -> &'static str {
                match self {
                    $( $name::$variant => $text, )+
                }
            }

            /// [`Self::name`] NUL-terminated, a static string for the C ABI.
            pub const fn c_name(self) -> &'static std::ffi::CStr {
                match self {
                    $( $name::$variant => $crate::abi_enum::cstr(concat!($text, "\0")), )+
                }
            }
        }
    };
}
pub(crate) use abi_enum;

#[cfg(test)]
mod tests {
    abi_enum! {
        /// A table as the crate writes them.
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub enum Demo {
            /// Documented.
            Zero = 0 => "zero",
            One = 1 => "one-1",
            Two = 2 => "TWO",
        }
    }

    #[test]
    fn a_table_gives_numbers_names_and_the_reverse() {
        assert_eq!(Demo::ALL, [Demo::Zero, Demo::One, Demo::Two]);
        assert_eq!(Demo::One as u32, 1);
        assert_eq!(Demo::from_u32(2), Some(Demo::Two));
        assert_eq!(Demo::from_u32(3), None);
        assert_eq!(Demo::from_u32(u32::MAX), None);
        assert_eq!(Demo::One.name(), "one-1");
        assert_eq!(Demo::Two.c_name().to_bytes_with_nul(), b"TWO\0");
    }
}

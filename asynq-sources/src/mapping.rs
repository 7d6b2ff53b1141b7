//! The row mappings of the drivers without one of their own (tokio-postgres, rusqlite): a
//! trait per backend, implemented here for single columns, `Option`s of them, `()` and tuples.

/// Implement the row mapping trait `$trait` (method `$method`, reading a `$row` with its
/// method `$get`, failing with `$error`) for the single-column types `$scalar`, their
/// `Option`s, `()`, and tuples of up to 12 columns of any `$column` type.
macro_rules! row_mapping {
    (
        $trait:ident :: $method:ident ($row:ty) -> $error:ty, via $get:ident,
        tuples of $column:path, scalars $($scalar:ty),*
    ) => {
        $(
            impl $trait for $scalar {
                fn $method(row: &$row) -> Result<Self, $error> {
                    row.$get(0)
                }
            }
            impl $trait for Option<$scalar> {
                fn $method(row: &$row) -> Result<Self, $error> {
                    row.$get(0)
                }
            }
        )*
        impl $trait for () {
            fn $method(_row: &$row) -> Result<Self, $error> {
                Ok(())
            }
        }
        $crate::mapping::row_mapping!(@tuples $trait, $method, $row, $error, $get, $column;
            (A 0)
            (A 0, B 1)
            (A 0, B 1, C 2)
            (A 0, B 1, C 2, D 3)
            (A 0, B 1, C 2, D 3, E 4)
            (A 0, B 1, C 2, D 3, E 4, F 5)
            (A 0, B 1, C 2, D 3, E 4, F 5, G 6)
            (A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7)
            (A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7, I 8)
            (A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7, I 8, J 9)
            (A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7, I 8, J 9, K 10)
            (A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7, I 8, J 9, K 10, L 11)
        );
    };
    (@tuples $trait:ident, $method:ident, $row:ty, $error:ty, $get:ident, $column:path;
        $(($($t:ident $i:tt),+))*) => {
        $(
            impl<$($t: $column),+> $trait for ($($t,)+) {
                fn $method(row: &$row) -> Result<Self, $error> {
                    Ok(($(row.$get::<_, $t>($i)?,)+))
                }
            }
        )*
    };
}

pub(crate) use row_mapping;

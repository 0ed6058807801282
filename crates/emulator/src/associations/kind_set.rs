//! The association types on one link, kept inline for the usual one or two (unlabeled plus
//! Primary or a label) so a million links do not mean a million small allocations.

use super::AssociationKind;

/// How many kinds fit without a heap allocation.
const INLINE: usize = 2;

/// A sorted set of association kinds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum KindSet {
    /// Up to two kinds, the first `len` valid.
    Inline {
        len: u8,
        items: [AssociationKind; INLINE],
    },
    /// More than two.
    Heap(Vec<AssociationKind>),
}

impl KindSet {
    /// A set holding one kind.
    pub(super) fn one(kind: AssociationKind) -> Self {
        Self::Inline {
            len: 1,
            items: [kind; INLINE],
        }
    }

    /// The kinds, sorted.
    pub(super) fn as_slice(&self) -> &[AssociationKind] {
        match self {
            Self::Inline { len, items } => &items[..usize::from(*len)],
            Self::Heap(items) => items,
        }
    }

    /// True when no kind is left.
    pub(super) fn is_empty(&self) -> bool {
        self.as_slice().is_empty()
    }

    /// Adds a kind; false when it was already there.
    pub(super) fn insert(&mut self, kind: AssociationKind) -> bool {
        let mut all = self.as_slice().to_vec();
        let Err(at) = all.binary_search(&kind) else {
            return false;
        };
        all.insert(at, kind);
        *self = Self::from_sorted(all);
        true
    }

    /// Removes a kind; false when it was not there.
    pub(super) fn remove(&mut self, kind: AssociationKind) -> bool {
        let mut all = self.as_slice().to_vec();
        let Ok(at) = all.binary_search(&kind) else {
            return false;
        };
        all.remove(at);
        *self = Self::from_sorted(all);
        true
    }

    fn from_sorted(all: Vec<AssociationKind>) -> Self {
        match all.as_slice() {
            [] => Self::Inline {
                len: 0,
                items: [AssociationKind::hubspot(0); INLINE],
            },
            [a] => Self::Inline {
                len: 1,
                items: [*a; INLINE],
            },
            [a, b] => Self::Inline {
                len: 2,
                items: [*a, *b],
            },
            _ => Self::Heap(all),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stays_sorted_across_inline_and_heap() {
        let k = AssociationKind::hubspot;
        let mut set = KindSet::one(k(279));
        assert!(set.insert(k(1)));
        assert!(!set.insert(k(1)));
        assert!(matches!(set, KindSet::Inline { len: 2, .. }));
        assert!(set.insert(k(50)));
        assert!(matches!(set, KindSet::Heap(_)));
        assert_eq!(set.as_slice(), &[k(1), k(50), k(279)]);
        assert!(set.remove(k(50)));
        assert!(!set.remove(k(50)));
        assert!(matches!(set, KindSet::Inline { len: 2, .. }));
        assert!(set.remove(k(1)) && set.remove(k(279)));
        assert!(set.is_empty());
    }
}

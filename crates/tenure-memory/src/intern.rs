//! Values many records share (user, client and resource ids, scope sets), each
//! kept once per zone and referred to by a 4-byte symbol.

use crate::sharded::Sharded;
use std::hash::Hash;
use std::sync::Arc;

/// A symbol: the number an [`Interner`] gives a value.
pub(crate) type Symbol = u32;

/// Distinct values, each kept once and counted by the records holding it; a value
/// no record holds any more is dropped and its symbol reused.
#[derive(Debug)]
pub(crate) struct Interner<T: ?Sized> {
    symbols: Sharded<Arc<T>, Symbol>,
    /// Each symbol's value and how many records hold it.
    values: Vec<Option<(Arc<T>, usize)>>,
    free: Vec<Symbol>,
}

impl<T: ?Sized> Default for Interner<T> {
    fn default() -> Self {
        Interner {
            symbols: Sharded::default(),
            values: Vec::new(),
            free: Vec::new(),
        }
    }
}

impl<T: ?Sized + Hash + Eq> Interner<T>
where
    for<'a> Arc<T>: From<&'a T>,
{
    /// The symbol of `value`, if a record holds it.
    pub(crate) fn find(&self, value: &T) -> Option<Symbol> {
        self.symbols.get(value).copied()
    }

    /// The value of a symbol a record holds.
    pub(crate) fn get(&self, symbol: Symbol) -> Option<&T> {
        self.values
            .get(symbol as usize)
            .and_then(|v| v.as_ref())
            .map(|(v, _)| &**v)
    }

    /// The symbol of `value` for one more record holding it.
    pub(crate) fn acquire(&mut self, value: &T) -> Symbol {
        if let Some(&symbol) = self.symbols.get(value) {
            if let Some(Some((_, count))) = self.values.get_mut(symbol as usize) {
                *count += 1;
            }
            return symbol;
        }
        let shared: Arc<T> = Arc::from(value);
        let symbol = match self.free.pop() {
            Some(symbol) => {
                self.values[symbol as usize] = Some((shared.clone(), 1));
                symbol
            }
            None => {
                self.values.push(Some((shared.clone(), 1)));
                (self.values.len() - 1) as Symbol
            }
        };
        self.symbols.insert(shared, symbol);
        symbol
    }

    /// One record fewer holds `symbol`.
    pub(crate) fn release(&mut self, symbol: Symbol) {
        let Some(slot) = self.values.get_mut(symbol as usize) else {
            return;
        };
        let last = match slot {
            Some((_, count)) if *count > 1 => {
                *count -= 1;
                false
            }
            Some(_) => true,
            None => false,
        };
        if last {
            if let Some((value, _)) = slot.take() {
                self.symbols.remove(&*value);
                self.free.push(symbol);
            }
        }
    }
}

#[cfg(test)]
impl<T: ?Sized> Interner<T> {
    /// Symbols ever handed out and not reused yet, held or free.
    pub(crate) fn symbols_made(&self) -> usize {
        self.values.len()
    }
}

//! Serializes file-tree operations that touch overlapping paths: a lock on `a/b` waits while
//! `a`, `a/b` or anything below `a/b` is held, so deleting a directory never races a write
//! into it. Blocking (a `Condvar`), because the writer runs on blocking threads.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, PoisonError};

/// A set of held paths shared by clones.
#[derive(Debug, Clone, Default)]
pub(crate) struct PathLocks {
    inner: Arc<(Mutex<Vec<PathBuf>>, Condvar)>,
}

/// Holds a path until dropped.
#[derive(Debug)]
pub(crate) struct PathGuard {
    locks: PathLocks,
    path: PathBuf,
}

fn overlaps(a: &Path, b: &Path) -> bool {
    a.starts_with(b) || b.starts_with(a)
}

impl PathLocks {
    /// Waits until no held path is `path`, one of its ancestors or one of its descendants,
    /// then holds `path`.
    pub(crate) fn lock(&self, path: &Path) -> PathGuard {
        let (held, cv) = &*self.inner;
        let mut held = held.lock().unwrap_or_else(PoisonError::into_inner);
        while held.iter().any(|h| overlaps(h, path)) {
            held = cv.wait(held).unwrap_or_else(PoisonError::into_inner);
        }
        held.push(path.to_path_buf());
        PathGuard {
            locks: self.clone(),
            path: path.to_path_buf(),
        }
    }
}

impl Drop for PathGuard {
    fn drop(&mut self) {
        let (held, cv) = &*self.locks.inner;
        let mut held = held.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(i) = held.iter().position(|h| *h == self.path) {
            held.swap_remove(i);
        }
        cv.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::time::Duration;

    #[test]
    fn overlapping_paths_wait_and_disjoint_paths_do_not() {
        let locks = PathLocks::default();
        let parent = locks.lock(Path::new("/d/a"));
        // A sibling is free at once.
        drop(locks.lock(Path::new("/d/b")));
        let entered = Arc::new(AtomicBool::new(false));
        let t = {
            let (locks, entered) = (locks.clone(), entered.clone());
            std::thread::spawn(move || {
                let _child = locks.lock(Path::new("/d/a/x"));
                entered.store(true, Ordering::SeqCst);
            })
        };
        std::thread::sleep(Duration::from_millis(50));
        assert!(
            !entered.load(Ordering::SeqCst),
            "a child path must wait for its parent"
        );
        drop(parent);
        t.join().unwrap();
        assert!(entered.load(Ordering::SeqCst));
    }
}

//! How the operator's watches fill their caches at start-up and after a re-list: the choice
//! between memory and load on the API server's storage, made once for every cache watch.
//!
//! A LIST with `resourceVersion=0` is answered from the API server's watch cache, which does
//! not page (the cacher's `shouldDelegateList` serves such a list whole whatever `limit`
//! says): the whole collection arrives as one response, held as JSON and as parsed objects at
//! once, about 12 KiB per Deployment while it is parsed (121 MiB at 10,000 Deployments). A
//! LIST without a resourceVersion and with a `limit` is paged by the server (from etcd, or
//! from the watch cache's snapshots where the server has them), so the peak is one page.
//! kube's watcher never sends both: with a page size set it drops `resourceVersion=0`
//! (kube-core's `ListParams`), so a cached list is one without a page size.

use kube::runtime::watcher;

/// Objects per page of a paged list: the peak while the caches fill is about one page.
pub const PAGE_SIZE: u32 = 100;

/// How a watch gets the objects that already exist before it follows changes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum InitialList {
    /// A consistent list in pages of [`PAGE_SIZE`]: the memory of one page, at the cost of
    /// the API server reading its storage page by page at start-up and at every re-list.
    #[default]
    Paged,
    /// `resourceVersion=0`, from the API server's watch cache, as client-go's informers list:
    /// no storage read, but the whole collection in one response.
    Cached,
    /// A watch with `sendInitialEvents=true` (streaming lists, `WatchList`): the objects come
    /// one event at a time from the watch cache, with neither a storage read nor a peak. The
    /// API server must serve it: Kubernetes 1.32, or 1.34 and later, by default (1.33 turned
    /// it off by default); a server that refuses it answers every watch with an error and the
    /// caches never fill.
    Streaming,
}

impl InitialList {
    pub const ALL: [InitialList; 3] = [Self::Paged, Self::Cached, Self::Streaming];

    /// The watcher settings for a cache watch listed this way.
    pub fn watcher_config(self) -> watcher::Config {
        let config = watcher::Config::default();
        match self {
            Self::Paged => config.page_size(PAGE_SIZE),
            Self::Cached => {
                let mut config = config.any_semantic();
                // With a page size, kube would leave out `resourceVersion=0` and read storage.
                config.page_size = None;
                config
            }
            Self::Streaming => config.streaming_lists(),
        }
    }

    /// The flag's spelling of this choice (`--initial-list`).
    pub fn flag_value(self) -> &'static str {
        match self {
            Self::Paged => "paged",
            Self::Cached => "cached",
            Self::Streaming => "streaming",
        }
    }
}

impl std::str::FromStr for InitialList {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|choice| choice.flag_value() == text)
            .ok_or_else(|| format!("{text:?} is not a way to list: paged, cached or streaming"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube::runtime::watcher::{InitialListStrategy, ListSemantic};

    #[test]
    fn paged_lists_are_consistent_reads_in_small_pages() {
        let config = InitialList::Paged.watcher_config();
        assert_eq!(config.list_semantic, ListSemantic::MostRecent, "no resourceVersion=0");
        assert_eq!(config.page_size, Some(PAGE_SIZE));
        assert_eq!(config.initial_list_strategy, InitialListStrategy::ListWatch);
    }

    #[test]
    fn cached_lists_read_the_watch_cache() {
        let config = InitialList::Cached.watcher_config();
        assert_eq!(config.list_semantic, ListSemantic::Any);
        assert_eq!(config.page_size, None, "kube sends resourceVersion=0 only without a limit");
        assert_eq!(config.initial_list_strategy, InitialListStrategy::ListWatch);
    }

    #[test]
    fn streaming_lists_list_nothing() {
        let config = InitialList::Streaming.watcher_config();
        assert_eq!(config.initial_list_strategy, InitialListStrategy::StreamingList);
    }

    #[test]
    fn the_default_is_paged() {
        assert_eq!(InitialList::default(), InitialList::Paged);
    }

    #[test]
    fn each_choice_reads_back_from_its_spelling() {
        for choice in InitialList::ALL {
            assert_eq!(choice.flag_value().parse(), Ok(choice));
        }
        let refused = "everything".parse::<InitialList>().expect_err("not a choice");
        assert_eq!(refused, "\"everything\" is not a way to list: paged, cached or streaming");
    }
}

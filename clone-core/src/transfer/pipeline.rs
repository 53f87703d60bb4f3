//! A bounded queue and a thread that drains it in order: what lets a
//! clone's thread hand work off and go on (the recipient's file writes,
//! the donor's network sends, the status files). The caller pushes items;
//! the pipeline's thread gives them to its [`Sink`] in the order pushed.
//! A failure is kept until the caller takes it ([`Pipeline::drain`] or
//! [`Pipeline::take_failure`]); until then the items that follow are not
//! handled but discarded, since the work they belong to has failed. Once
//! it is taken, items are handled again: a sink whose failure must stop it
//! for good (a broken connection) remembers it and refuses what follows.
//! A panic of the sink ends the thread; `push` then gives its items back,
//! and `drain` or `take_failure` raise the panic again on the caller.

use crossbeam_channel::{Receiver, Sender};
use parking_lot::Mutex;
use std::any::Any;
use std::io;
use std::marker::PhantomData;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::sync::Arc;

/// What a pipeline's thread does with the items pushed.
pub trait Sink: Send {
    type Item: Send;
    type Error: Send;

    /// Runs first on the pipeline's thread (e.g. lower its CPU priority).
    fn started(&mut self) {}

    /// Handles one item. After a failure, later items go to `discard`
    /// until the failure is taken.
    fn take(&mut self, item: Self::Item) -> Result<(), Self::Error>;

    /// An item not handled because an earlier one failed (recycle its
    /// buffer).
    fn discard(&mut self, item: Self::Item) {
        drop(item)
    }

    /// The items that were waiting at once, in order; a sink that can
    /// merge them overrides this (the status writer writes a file queued
    /// twice once). By default each is taken in turn; at the first
    /// failure the rest are discarded.
    fn take_all(&mut self, items: Vec<Self::Item>) -> Result<(), Self::Error> {
        take_in_turn(self, items)
    }
}

/// Takes each item in turn; at the first failure the rest are discarded
/// (what [`Sink::take_all`] does unless a sink merges items).
pub fn take_in_turn<S: Sink + ?Sized>(sink: &mut S, items: Vec<S::Item>) -> Result<(), S::Error> {
    let mut items = items.into_iter();
    while let Some(item) = items.next() {
        if let Err(e) = sink.take(item) {
            for rest in items {
                sink.discard(rest);
            }
            return Err(e);
        }
    }
    Ok(())
}

enum Message<T> {
    Item(T),
    /// Answered once everything queued before it is handled.
    Drain(Sender<()>),
}

struct Shared<E> {
    /// The first failure not yet taken.
    failure: Mutex<Option<E>>,
    /// The sink panicked: the panic, to be raised again on the caller's
    /// thread by `drain` or `take_failure`.
    panic: Mutex<Option<Box<dyn Any + Send>>>,
}

/// A bounded queue and the thread that hands its items to a [`Sink`], in
/// order. Dropping it closes the queue and waits until the thread has
/// handled everything queued (and ended).
pub struct Pipeline<S: Sink> {
    /// None once dropping.
    queue: Option<Sender<Message<S::Item>>>,
    /// Disconnected when the thread has ended (it holds the sender).
    ended: Receiver<()>,
    shared: Arc<Shared<S::Error>>,
    sink: PhantomData<fn() -> S>,
}

/// What runs on the pipeline's thread.
struct Worker<S: Sink> {
    sink: S,
    queue: Receiver<Message<S::Item>>,
    shared: Arc<Shared<S::Error>>,
    /// Messages taken at most at each wake (the queue's bound).
    depth: usize,
    /// Dropped when the thread ends, after a panic is recorded.
    _alive: Sender<()>,
}

impl<S: Sink> Worker<S> {
    fn run(mut self) {
        let ran = catch_unwind(AssertUnwindSafe(|| self.serve()));
        if let Err(panic) = ran {
            *self.shared.panic.lock() = Some(panic);
        }
        // `_alive` goes last: whoever waits for the end sees the panic.
    }

    fn serve(&mut self) {
        let Worker { sink, queue, shared, depth, .. } = self;
        sink.started();
        while let Ok(first) = queue.recv() {
            let mut items = Vec::new();
            for message in std::iter::once(first).chain(queue.try_iter().take(*depth)) {
                match message {
                    Message::Item(item) => items.push(item),
                    Message::Drain(answer) => {
                        handle(sink, shared, std::mem::take(&mut items));
                        let _ = answer.send(());
                    }
                }
            }
            handle(sink, shared, items);
        }
    }
}

/// Gives `items` to the sink, or to its `discard` while a failure waits to
/// be taken.
fn handle<S: Sink>(sink: &mut S, shared: &Shared<S::Error>, items: Vec<S::Item>) {
    if items.is_empty() {
        return;
    }
    let failed = shared.failure.lock().is_some();
    if failed {
        for item in items {
            sink.discard(item);
        }
    } else if let Err(e) = sink.take_all(items) {
        shared.failure.lock().get_or_insert(e);
    }
}

impl<S: Sink> Pipeline<S> {
    fn prepare(depth: usize, sink: S) -> io::Result<(Pipeline<S>, Worker<S>)> {
        if depth == 0 {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "a pipeline's depth must be at least 1"));
        }
        let (queue, items) = crossbeam_channel::bounded(depth);
        let (alive, ended) = crossbeam_channel::bounded(0);
        let shared = Arc::new(Shared { failure: Mutex::new(None), panic: Mutex::new(None) });
        let worker = Worker { sink, queue: items, shared: Arc::clone(&shared), depth, _alive: alive };
        Ok((Pipeline { queue: Some(queue), ended, shared, sink: PhantomData }, worker))
    }

    /// Starts a pipeline whose thread is named `name`, with at most `depth`
    /// items queued (at least 1).
    pub fn start(name: &str, depth: usize, sink: S) -> io::Result<Pipeline<S>>
    where
        S: 'static,
    {
        let (pipeline, worker) = Pipeline::prepare(depth, sink)?;
        match std::thread::Builder::new().name(name.into()).spawn(move || worker.run()) {
            Ok(_) => Ok(pipeline),
            Err(e) => Err(pipeline.abandon(e)),
        }
    }

    /// Starts a pipeline as `start` does, on a thread of `scope`, so that
    /// the sink may borrow what outlives the scope. Drop the pipeline
    /// before the scope ends: the scope waits for the thread, which runs
    /// until the pipeline is dropped.
    pub fn start_scoped<'scope, 'env>(scope: &'scope std::thread::Scope<'scope, 'env>, name: &str, depth: usize, sink: S) -> io::Result<Pipeline<S>>
    where
        S: 'scope,
    {
        let (pipeline, worker) = Pipeline::prepare(depth, sink)?;
        match std::thread::Builder::new().name(name.into()).spawn_scoped(scope, move || worker.run()) {
            Ok(_) => Ok(pipeline),
            Err(e) => Err(pipeline.abandon(e)),
        }
    }

    /// Items (and drain requests) waiting in the queue.
    pub fn queued(&self) -> usize {
        self.queue.as_ref().map_or(0, Sender::len)
    }

    /// A pipeline whose thread did not start: dropped without waiting.
    fn abandon(mut self, e: io::Error) -> io::Error {
        self.queue = None;
        let (_, never) = crossbeam_channel::bounded(0);
        self.ended = never;
        e
    }

    /// Queues an item (waits while `depth` are queued). Err(item) back if
    /// the thread has ended (its sink panicked).
    pub fn push(&self, item: S::Item) -> Result<(), S::Item> {
        let Some(queue) = &self.queue else { return Err(item) };
        match queue.send(Message::Item(item)) {
            Ok(()) => Ok(()),
            Err(crossbeam_channel::SendError(Message::Item(item))) => Err(item),
            Err(crossbeam_channel::SendError(Message::Drain(_))) => unreachable!("an item was sent"),
        }
    }

    /// Waits until everything queued so far is handled; the first failure
    /// since the last one taken. A panic of the sink is raised again here.
    pub fn drain(&self) -> Result<(), S::Error> {
        if let Some(queue) = &self.queue {
            let (answer, answered) = crossbeam_channel::bounded(1);
            if queue.send(Message::Drain(answer)).is_err() || answered.recv().is_err() {
                // The thread has ended without answering: wait until it
                // has recorded why.
                let _ = self.ended.recv();
            }
        }
        self.take_failure().map_or(Ok(()), Err)
    }

    /// The failure, if one happened, without waiting (taken: reported
    /// once). A panic of the sink is raised again here.
    pub fn take_failure(&self) -> Option<S::Error> {
        let panic = self.shared.panic.lock().take();
        if let Some(panic) = panic {
            resume_unwind(panic);
        }
        self.shared.failure.lock().take()
    }
}

impl<S: Sink> Drop for Pipeline<S> {
    /// Closes the queue and waits until the thread has handled everything
    /// queued. A failure not taken, or a panic of the sink, is dropped.
    fn drop(&mut self) {
        self.queue = None;
        let _ = self.ended.recv();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;
    use std::time::Duration;

    #[derive(Debug, Clone, PartialEq, Eq)]
    enum Event {
        Started(Option<String>),
        Took(u32),
        Discarded(u32),
        Batch(usize),
    }

    /// Where a sink says it holds an item, and waits to be let go on.
    type Gate = (mpsc::Sender<u32>, mpsc::Receiver<()>);

    /// Records what it is given; fails on the items in `fail`; before
    /// each item in `hold`, says so on the gate's first channel and waits
    /// for a word on its second; panics on 9999.
    struct Recorder {
        log: Arc<Mutex<Vec<Event>>>,
        fail: Vec<u32>,
        hold: Vec<u32>,
        gate: Option<Gate>,
        pause: Duration,
        batches: bool,
    }

    impl Recorder {
        fn new() -> (Recorder, Arc<Mutex<Vec<Event>>>) {
            let log = Arc::new(Mutex::new(Vec::new()));
            (Recorder { log: Arc::clone(&log), fail: vec![], hold: vec![], gate: None, pause: Duration::ZERO, batches: false }, log)
        }
    }

    impl Sink for Recorder {
        type Item = u32;
        type Error = String;

        fn started(&mut self) {
            self.log.lock().push(Event::Started(std::thread::current().name().map(str::to_owned)));
        }

        fn take(&mut self, item: u32) -> Result<(), String> {
            if self.hold.contains(&item) {
                if let Some((holding, open)) = &self.gate {
                    let _ = holding.send(item);
                    let _ = open.recv();
                }
            }
            std::thread::sleep(self.pause);
            if item == 9999 {
                panic!("the sink broke on {item}");
            }
            self.log.lock().push(Event::Took(item));
            if self.fail.contains(&item) {
                return Err(format!("failed at {item}"));
            }
            Ok(())
        }

        fn discard(&mut self, item: u32) {
            self.log.lock().push(Event::Discarded(item));
        }

        fn take_all(&mut self, items: Vec<u32>) -> Result<(), String> {
            if self.batches {
                self.log.lock().push(Event::Batch(items.len()));
            }
            take_in_turn(self, items)
        }
    }

    /// A gate for a Recorder: (the gate, its holding signal, its opener).
    fn gate() -> (Gate, mpsc::Receiver<u32>, mpsc::Sender<()>) {
        let (holding, held) = mpsc::channel();
        let (open, opened) = mpsc::channel();
        ((holding, opened), held, open)
    }

    fn taken(log: &Mutex<Vec<Event>>) -> Vec<u32> {
        log.lock().iter().filter_map(|e| if let Event::Took(i) = e { Some(*i) } else { None }).collect()
    }

    fn discarded(log: &Mutex<Vec<Event>>) -> Vec<u32> {
        log.lock().iter().filter_map(|e| if let Event::Discarded(i) = e { Some(*i) } else { None }).collect()
    }

    #[test]
    fn items_are_taken_in_order_after_started_on_the_named_thread() {
        let (sink, log) = Recorder::new();
        let pipeline = Pipeline::start("clone_test", 3, sink).unwrap();
        for i in 0..2000 {
            pipeline.push(i).unwrap();
        }
        assert_eq!(pipeline.drain(), Ok(()));
        assert_eq!(log.lock()[0], Event::Started(Some("clone_test".into())));
        assert_eq!(taken(&log), (0..2000).collect::<Vec<_>>());
        assert!(discarded(&log).is_empty());
    }

    #[test]
    fn drain_waits_for_everything_queued_before_it() {
        let (mut sink, log) = Recorder::new();
        sink.pause = Duration::from_millis(2);
        let pipeline = Pipeline::start("clone_test", 4, sink).unwrap();
        // Nothing queued: at once.
        assert_eq!(pipeline.drain(), Ok(()));
        for round in 0..3 {
            for i in 0..10 {
                pipeline.push(round * 10 + i).unwrap();
            }
            assert_eq!(pipeline.drain(), Ok(()));
            assert_eq!(taken(&log).len(), (round as usize + 1) * 10, "round {round}");
        }
    }

    #[test]
    fn a_failure_is_reported_once_and_what_follows_is_discarded_until_then() {
        let (mut sink, log) = Recorder::new();
        sink.fail = vec![5, 30];
        let pipeline = Pipeline::start("clone_test", 2, sink).unwrap();
        for i in 0..10 {
            pipeline.push(i).unwrap();
        }
        assert_eq!(pipeline.drain(), Err("failed at 5".to_owned()));
        assert_eq!(taken(&log), [0, 1, 2, 3, 4, 5]);
        assert_eq!(discarded(&log), [6, 7, 8, 9]);
        // Reported once; taken, later items are handled again.
        assert_eq!(pipeline.drain(), Ok(()));
        assert_eq!(pipeline.take_failure(), None);
        for i in 10..13 {
            pipeline.push(i).unwrap();
        }
        assert_eq!(pipeline.drain(), Ok(()));
        assert_eq!(taken(&log), [0, 1, 2, 3, 4, 5, 10, 11, 12]);

        // Without waiting: take_failure sees it once the thread got there.
        pipeline.push(30).unwrap();
        pipeline.push(31).unwrap();
        let mut failure = None;
        for _ in 0..2000 {
            failure = pipeline.take_failure();
            if failure.is_some() {
                break;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        assert_eq!(failure, Some("failed at 30".to_owned()));
        assert_eq!(pipeline.take_failure(), None);
        assert_eq!(pipeline.drain(), Ok(()));
        // 31 came after the failure; whether it was handled or discarded
        // depends on whether the failure was taken before it, but it was
        // one of the two, once.
        let (t, d) = (taken(&log), discarded(&log));
        assert_eq!(usize::from(t.contains(&31)) + usize::from(d.contains(&31)), 1);
    }

    #[test]
    fn the_default_take_all_stops_at_the_first_failure_of_a_batch() {
        let (mut sink, log) = Recorder::new();
        let (gate, held, open) = gate();
        sink.gate = Some(gate);
        sink.hold = vec![0];
        sink.fail = vec![2];
        sink.batches = true;
        let pipeline = Pipeline::start("clone_test", 8, sink).unwrap();
        pipeline.push(0).unwrap();
        // 0 holds the thread: 1..=5 wait in the queue, one batch.
        assert_eq!(held.recv(), Ok(0));
        for i in 1..=5 {
            pipeline.push(i).unwrap();
        }
        open.send(()).unwrap();
        assert_eq!(pipeline.drain(), Err("failed at 2".into()));
        assert_eq!(taken(&log), [0, 1, 2]);
        assert_eq!(discarded(&log), [3, 4, 5]);
        assert!(log.lock().contains(&Event::Batch(5)), "{:?}", log.lock());
    }

    #[test]
    fn push_after_the_thread_ended_returns_the_item_and_drain_raises_the_panic() {
        let (sink, log) = Recorder::new();
        let pipeline = Pipeline::start("clone_test", 2, sink).unwrap();
        pipeline.push(1).unwrap();
        pipeline.push(9999).unwrap();
        // The thread ends with the panic: pushes come back.
        let back = (0..2000).find_map(|i| {
            std::thread::sleep(Duration::from_millis(5));
            pipeline.push(100 + i).err()
        });
        assert!(back.is_some_and(|b| b >= 100), "{back:?}");
        assert_eq!(taken(&log), [1]);
        let raised = catch_unwind(AssertUnwindSafe(|| pipeline.drain()));
        let panic = raised.expect_err("the sink's panic is raised on the caller");
        assert_eq!(panic.downcast_ref::<String>().map(String::as_str), Some("the sink broke on 9999"));
        // Once; the pipeline stays usable to drop.
        assert_eq!(pipeline.drain(), Ok(()));
        assert_eq!(pipeline.push(7), Err(7));
        drop(pipeline);
    }

    #[test]
    fn a_scoped_pipeline_may_borrow_a_local() {
        struct Collect<'a>(&'a mut Vec<u32>);
        impl Sink for Collect<'_> {
            type Item = u32;
            type Error = ();
            fn take(&mut self, item: u32) -> Result<(), ()> {
                self.0.push(item);
                Ok(())
            }
        }
        let mut seen = Vec::new();
        std::thread::scope(|scope| {
            let pipeline = Pipeline::start_scoped(scope, "clone_test", 2, Collect(&mut seen)).unwrap();
            for i in 0..100 {
                pipeline.push(i).unwrap();
            }
            assert_eq!(pipeline.drain(), Ok(()));
            pipeline.push(100).unwrap();
            // The drop waits for the last one.
        });
        assert_eq!(seen, (0..=100).collect::<Vec<_>>());
    }

    #[test]
    fn drop_waits_for_the_queued_items() {
        let (mut sink, log) = Recorder::new();
        sink.pause = Duration::from_millis(3);
        let pipeline = Pipeline::start("clone_test", 16, sink).unwrap();
        for i in 0..16 {
            pipeline.push(i).unwrap();
        }
        drop(pipeline);
        assert_eq!(taken(&log), (0..16).collect::<Vec<_>>());
    }

    #[test]
    fn a_sink_merges_what_waits_together() {
        /// Keeps, of the names waiting at once, each one's last value; holds
        /// the first batch until told.
        struct Latest(Arc<Mutex<Vec<(char, u32)>>>, Gate, bool);
        impl Sink for Latest {
            type Item = (char, u32);
            type Error = ();
            fn take(&mut self, item: (char, u32)) -> Result<(), ()> {
                self.take_all(vec![item])
            }
            fn take_all(&mut self, items: Vec<(char, u32)>) -> Result<(), ()> {
                if !std::mem::replace(&mut self.2, true) {
                    let (holding, open) = &self.1;
                    let _ = holding.send(0);
                    let _ = open.recv();
                }
                for (i, (name, value)) in items.iter().enumerate() {
                    if !items[i + 1..].iter().any(|(later, _)| later == name) {
                        self.0.lock().push((*name, *value));
                    }
                }
                Ok(())
            }
        }
        let written = Arc::new(Mutex::new(Vec::new()));
        let (gate, held, open) = gate();
        let pipeline = Pipeline::start("clone_test", 64, Latest(Arc::clone(&written), gate, false)).unwrap();
        pipeline.push(('x', 0)).unwrap();
        held.recv().unwrap();
        for v in 1..=20 {
            pipeline.push(('a', v)).unwrap();
            pipeline.push(('b', v)).unwrap();
        }
        pipeline.push(('a', 21)).unwrap();
        open.send(()).unwrap();
        pipeline.drain().unwrap();
        // The first alone, then one batch: b's last, then a's last.
        assert_eq!(*written.lock(), [('x', 0), ('b', 20), ('a', 21)]);
    }

    #[test]
    fn a_drain_splits_a_batch_where_it_was_asked() {
        let (mut sink, log) = Recorder::new();
        let (gate, held, open) = gate();
        sink.gate = Some(gate);
        sink.hold = vec![0];
        sink.batches = true;
        let pipeline = Arc::new(Pipeline::start("clone_test", 8, sink).unwrap());
        pipeline.push(0).unwrap();
        held.recv().unwrap();
        pipeline.push(1).unwrap();
        pipeline.push(2).unwrap();
        let drainer = {
            let pipeline = Arc::clone(&pipeline);
            let log = Arc::clone(&log);
            std::thread::spawn(move || {
                pipeline.drain().unwrap();
                taken(&log)
            })
        };
        // The drain request is queued after 1 and 2, before 3.
        while pipeline.queued() < 3 {
            std::thread::sleep(Duration::from_millis(1));
        }
        pipeline.push(3).unwrap();
        assert_eq!(pipeline.queued(), 4);
        open.send(()).unwrap();
        // Answered with 1 and 2 handled: they were queued before it.
        let at_answer = drainer.join().unwrap();
        assert!(at_answer.starts_with(&[0, 1, 2]), "{at_answer:?}");
        pipeline.drain().unwrap();
        assert_eq!(taken(&log), [0, 1, 2, 3]);
        let batches: Vec<Event> = log.lock().iter().filter(|e| matches!(e, Event::Batch(_))).cloned().collect();
        assert_eq!(batches, [Event::Batch(1), Event::Batch(2), Event::Batch(1)]);
    }

    #[test]
    fn a_depth_of_zero_is_refused() {
        let (sink, _) = Recorder::new();
        assert_eq!(Pipeline::start("clone_test", 0, sink).err().map(|e| e.kind()), Some(io::ErrorKind::InvalidInput));
    }
}

-- A peer file as chat-peer made it at schema 2 (pins, before contacts),
-- empty: what migrations 1 and 2 created. Tests load it to migrate from.
CREATE TABLE meta (
  key   TEXT PRIMARY KEY NOT NULL,
  value TEXT NOT NULL
) WITHOUT ROWID;
-- Our side of each conversation: the next sequence number to give.
CREATE TABLE conversations (
  peer_key      TEXT PRIMARY KEY NOT NULL,  -- lowercase name
  epoch         TEXT NOT NULL,
  next_sequence INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE outbox (
  id            TEXT PRIMARY KEY NOT NULL,
  recipient_key TEXT NOT NULL,
  sequence      INTEGER NOT NULL,
  body          BLOB NOT NULL,              -- serialized chat Message
  stored        INTEGER NOT NULL DEFAULT 0  -- 1: in the mailbox
);
CREATE INDEX outbox_order ON outbox (recipient_key, sequence);
-- Their side: the next sequence number we wait for from each sender.
CREATE TABLE inbound (
  sender_key    TEXT PRIMARY KEY NOT NULL,
  epoch         TEXT NOT NULL,
  next_sequence INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE inbox (
  arrival        INTEGER PRIMARY KEY AUTOINCREMENT,
  id             TEXT NOT NULL UNIQUE,
  sender_key     TEXT NOT NULL,
  epoch          TEXT,
  sequence       INTEGER,            -- NULL: not sequenced
  body           BLOB,               -- NULL once shown
  received_at_ms INTEGER NOT NULL,
  state          INTEGER NOT NULL,   -- 0 held, 1 released, 2 shown
  released       INTEGER,            -- release order
  late           INTEGER NOT NULL    -- 1: came from our mailbox
);
CREATE INDEX inbox_held ON inbox (sender_key, sequence) WHERE state = 0;
CREATE INDEX inbox_released ON inbox (released) WHERE state = 1;
CREATE TABLE pins (
  name_key     TEXT PRIMARY KEY NOT NULL,
  name         TEXT NOT NULL,
  public_key   BLOB NOT NULL,
  pinned_at_ms INTEGER NOT NULL
) WITHOUT ROWID;
ALTER TABLE inbox ADD COLUMN unverified INTEGER NOT NULL DEFAULT 0;
-- The authenticated sending time; NULL when unverified or unknown.
ALTER TABLE inbox ADD COLUMN sent_at_ms INTEGER;
-- Per sender, the newest sending time among its messages whose ids
-- were trimmed: anything sent no later is a replay. Sender '' holds
-- the watermark of every sender folded away.
CREATE TABLE watermarks (
  sender_key TEXT PRIMARY KEY NOT NULL,
  sent_ms    INTEGER NOT NULL
) WITHOUT ROWID;
PRAGMA user_version = 2;

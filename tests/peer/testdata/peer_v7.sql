-- A peer file as chat-peer made it at schema 7 (before conversations by id),
-- written by that build (a throwaway program over OpenPeerStore; the story
-- is in peer_store_test.cc, AFileFromBeforeConversationsByIdKeepsItsPromises),
-- then dumped with sqlite3 .dump; .dump leaves out user_version, set last.
PRAGMA foreign_keys=OFF;
BEGIN TRANSACTION;
CREATE TABLE meta (
        key   TEXT PRIMARY KEY NOT NULL,
        value TEXT NOT NULL
      ) WITHOUT ROWID;
INSERT INTO meta VALUES('lease_id','lease-1');
CREATE TABLE conversations (
        peer_key      TEXT PRIMARY KEY NOT NULL,  -- lowercase name
        epoch         TEXT NOT NULL,
        next_sequence INTEGER NOT NULL
      ) WITHOUT ROWID;
INSERT INTO conversations VALUES('bob','b5502e8d705fe76e',3);
INSERT INTO conversations VALUES('carol','21dcbe8e989fc642',2);
CREATE TABLE outbox (
        id            TEXT PRIMARY KEY NOT NULL,
        recipient_key TEXT NOT NULL,
        sequence      INTEGER NOT NULL,
        body          BLOB NOT NULL,              -- serialized chat Message
        stored        INTEGER NOT NULL DEFAULT 0  -- 1: in the mailbox
      );
INSERT INTO outbox VALUES('m2','bob',2,X'1205416c6963651a097374696c6c206f757422026d322a03426f623080e8b5eadf6738024210623535303265386437303566653736654802',1);
INSERT INTO outbox VALUES('m3','carol',1,X'1205416c6963651a086869206361726f6c22026d332a056361726f6c3080e8b5eadf6738014210323164636265386539383966633634324801',0);
CREATE TABLE inbound (
        sender_key    TEXT PRIMARY KEY NOT NULL,
        epoch         TEXT NOT NULL,
        next_sequence INTEGER NOT NULL
      ) WITHOUT ROWID;
INSERT INTO inbound VALUES('bob','e1',3);
INSERT INTO inbound VALUES('carol','e1',2);
CREATE TABLE pins (
        name_key     TEXT PRIMARY KEY NOT NULL,
        name         TEXT NOT NULL,
        public_key   BLOB NOT NULL,
        pinned_at_ms INTEGER NOT NULL
      ) WITHOUT ROWID;
CREATE TABLE watermarks (
        sender_key TEXT PRIMARY KEY NOT NULL,
        sent_ms    INTEGER NOT NULL
      ) WITHOUT ROWID;
CREATE TABLE contacts (
        name_key     TEXT PRIMARY KEY NOT NULL,
        name         TEXT NOT NULL,
        state        INTEGER NOT NULL,  -- Contact::State
        last_ms      INTEGER NOT NULL
      ) WITHOUT ROWID;
INSERT INTO contacts VALUES('bob','Bob',1,7);
CREATE TABLE history (
        seq            INTEGER PRIMARY KEY,  -- order written
        id             TEXT NOT NULL,
        peer_key       TEXT NOT NULL,        -- lowercase name of the other
        ours           INTEGER NOT NULL,     -- 1: we sent it
        sender         TEXT NOT NULL,
        recipient      TEXT NOT NULL,
        text           TEXT NOT NULL,
        sent_at_ms     INTEGER,              -- NULL: not known
        received_at_ms INTEGER,              -- theirs: when it came
        written_ms     INTEGER NOT NULL,     -- our clock; the trim's
        state          INTEGER NOT NULL,     -- ours: HistoryRank; theirs 0
        late           INTEGER NOT NULL,
        unverified     INTEGER NOT NULL
      );
INSERT INTO history VALUES(1,'m1','bob',1,'Alice','Bob','hi bob',3564777600000,NULL,3564777600000,5,0,0);
INSERT INTO history VALUES(2,'m2','bob',1,'Alice','Bob','still out',3564777600000,NULL,3564777600000,1,0,0);
INSERT INTO history VALUES(3,'m3','carol',1,'Alice','carol','hi carol',3564777600000,NULL,3564777600000,0,0,0);
INSERT INTO history VALUES(4,'b1','bob',0,'Bob','alice','text b1',3564777600000,3564777601000,3564777602000,0,0,0);
INSERT INTO history VALUES(5,'b2','bob',0,'Bob','alice','text b2',3564777601000,3564777602000,3564777603000,0,0,0);
INSERT INTO history VALUES(6,'x1','davide',0,'Davide','alice','text x1',3564777604000,3564777605000,3564777605000,0,0,1);
CREATE TABLE reads (
        peer_key  TEXT NOT NULL,
        id        TEXT NOT NULL,
        peer      TEXT NOT NULL,
        state     INTEGER NOT NULL,  -- ReadNote::State
        at_ms     INTEGER NOT NULL,
        PRIMARY KEY (peer_key, id)
      ) WITHOUT ROWID;
INSERT INTO reads VALUES('bob','b2','Bob',2,3564777605000);
INSERT INTO reads VALUES('bob','m1','Bob',0,5);
CREATE TABLE IF NOT EXISTS "inbox" (
        arrival        INTEGER PRIMARY KEY AUTOINCREMENT,
        id             TEXT NOT NULL,
        sender_key     TEXT NOT NULL,
        epoch          TEXT,
        sequence       INTEGER,            -- NULL: not sequenced
        body           BLOB,               -- NULL once shown
        received_at_ms INTEGER NOT NULL,
        state          INTEGER NOT NULL,   -- 0 held, 1 released, 2 shown
        released       INTEGER,            -- release order
        late           INTEGER NOT NULL,   -- 1: came from our mailbox
        unverified     INTEGER NOT NULL DEFAULT 0,
        sent_at_ms     INTEGER,
        unread         INTEGER NOT NULL DEFAULT 0,
        UNIQUE (sender_key, id)
      );
INSERT INTO inbox VALUES(1,'b1','bob','e1',1,NULL,3564777601000,2,1,0,0,3564777600000,1);
INSERT INTO inbox VALUES(2,'b2','bob','e1',2,NULL,3564777602000,2,2,0,0,3564777601000,0);
INSERT INTO inbox VALUES(3,'b4','bob','e1',4,X'1203426f621a0774657874206234220262342a05616c69636530d0f7b5eadf673804420265314801',3564777603000,0,NULL,0,0,3564777602000,0);
INSERT INTO inbox VALUES(4,'c1','carol','e1',1,X'12056361726f6c1a0774657874206331220263312a05616c69636530b8ffb5eadf673801420265314801',3564777604000,1,3,0,0,3564777603000,0);
INSERT INTO inbox VALUES(5,'x1','davide',NULL,NULL,NULL,3564777605000,2,4,0,1,NULL,0);
DELETE FROM sqlite_sequence;
INSERT INTO sqlite_sequence VALUES('inbox',5);
CREATE INDEX outbox_order ON outbox (recipient_key, sequence);
CREATE INDEX history_conversation ON history (peer_key, seq);
CREATE INDEX history_ours ON history (id) WHERE ours = 1;
CREATE INDEX inbox_held ON inbox (sender_key, sequence) WHERE state = 0;
COMMIT;
PRAGMA user_version = 7;

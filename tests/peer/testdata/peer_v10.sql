-- A peer file as chat-peer made it at schema 10 (before groups): the
-- schema-7 fixture (peer_v7.sql) opened, and so migrated, by that build (a
-- throwaway program over OpenPeerStore), then dumped with sqlite3 .dump;
-- .dump leaves out user_version, set last, and writes "DELETE FROM
-- sqlite_sequence" for the empty table migration 8 left, taken out here.
PRAGMA foreign_keys=OFF;
BEGIN TRANSACTION;
CREATE TABLE meta (
        key   TEXT PRIMARY KEY NOT NULL,
        value TEXT NOT NULL
      ) WITHOUT ROWID;
INSERT INTO meta VALUES('lease_id','lease-1');
INSERT INTO meta VALUES('shown_through','0');
CREATE TABLE conversations (
        conversation      TEXT PRIMARY KEY NOT NULL,  -- lowercase name
        epoch         TEXT NOT NULL,
        next_sequence INTEGER NOT NULL
      ) WITHOUT ROWID;
INSERT INTO conversations VALUES('bob','b5502e8d705fe76e',3);
INSERT INTO conversations VALUES('carol','21dcbe8e989fc642',2);
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
CREATE TABLE reads (
        conversation  TEXT NOT NULL,
        id        TEXT NOT NULL,
        peer      TEXT NOT NULL,
        state     INTEGER NOT NULL,  -- ReadNote::State
        at_ms     INTEGER NOT NULL,
        PRIMARY KEY (conversation, id)
      ) WITHOUT ROWID;
INSERT INTO reads VALUES('bob','b2','Bob',2,3564777605000);
INSERT INTO reads VALUES('bob','m1','Bob',0,5);
CREATE TABLE messages (
        seq            INTEGER PRIMARY KEY,         -- order written
        conversation   TEXT NOT NULL,               -- its id
        id             TEXT NOT NULL,
        sender_key     TEXT NOT NULL,               -- lowercase name
        ours           INTEGER NOT NULL,            -- 1: we sent it
        sender         TEXT NOT NULL,
        recipient      TEXT NOT NULL,
        text           TEXT,               -- NULL: in body (before 8)
        sent_at_ms     INTEGER,            -- as written; NULL: not known
        trusted_ms     INTEGER,            -- theirs: authenticated, replay's
        received_at_ms INTEGER,
        written_ms     INTEGER NOT NULL,   -- our clock; the history trim's
        late           INTEGER NOT NULL DEFAULT 0,
        unverified     INTEGER NOT NULL DEFAULT 0,
        status         INTEGER NOT NULL DEFAULT 0,  -- ours: HistoryRank
        in_history     INTEGER NOT NULL DEFAULT 1,
        -- Theirs only: the inbox.
        epoch          TEXT,
        sequence       INTEGER,            -- NULL: not sequenced
        body           BLOB,               -- the message but its text
        state          INTEGER,            -- 0 held, 1 released, 2 shown
        released       INTEGER,            -- release order
        unread         INTEGER NOT NULL DEFAULT 0   -- its kShown read note
      );
INSERT INTO messages VALUES(1,'bob','m1','alice',1,'Alice','Bob','hi bob',3564777600000,NULL,NULL,3564777600000,0,0,5,1,NULL,NULL,NULL,NULL,NULL,0);
INSERT INTO messages VALUES(2,'bob','m2','alice',1,'Alice','Bob','still out',3564777600000,NULL,NULL,3564777600000,0,0,1,1,NULL,NULL,NULL,NULL,NULL,0);
INSERT INTO messages VALUES(3,'carol','m3','alice',1,'Alice','carol','hi carol',3564777600000,NULL,NULL,3564777600000,0,0,0,1,NULL,NULL,NULL,NULL,NULL,0);
INSERT INTO messages VALUES(4,'bob','b1','bob',0,'Bob','alice','text b1',3564777600000,3564777600000,3564777601000,3564777602000,0,0,0,1,NULL,NULL,NULL,1,0,1);
INSERT INTO messages VALUES(5,'bob','b2','bob',0,'Bob','alice','text b2',3564777601000,3564777601000,3564777602000,3564777603000,0,0,0,1,NULL,NULL,NULL,1,0,0);
INSERT INTO messages VALUES(6,'davide','x1','davide',0,'Davide','alice','text x1',3564777604000,NULL,3564777605000,3564777605000,0,1,0,1,NULL,NULL,NULL,1,0,0);
INSERT INTO messages VALUES(9,'bob','b4','bob',0,'bob','',NULL,3564777602000,3564777602000,3564777603000,3564777603000,0,0,0,1,'e1',4,X'1203426f621a0774657874206234220262342a05616c69636530d0f7b5eadf673804420265314801',0,NULL,0);
INSERT INTO messages VALUES(10,'carol','c1','carol',0,'carol','',NULL,3564777603000,3564777603000,3564777604000,3564777604000,0,0,0,1,'e1',1,X'12056361726f6c1a0774657874206331220263312a05616c69636530b8ffb5eadf673801420265314801',1,3,0);
CREATE TABLE deliveries (
        id            TEXT NOT NULL,
        recipient_key TEXT NOT NULL,
        conversation  TEXT NOT NULL,
        sequence      INTEGER NOT NULL,
        body          BLOB NOT NULL,              -- serialized chat Message
        stored        INTEGER NOT NULL DEFAULT 0, -- 1: in the mailbox
        PRIMARY KEY (id, recipient_key)
      );
INSERT INTO deliveries VALUES('m2','bob','bob',2,X'1205416c6963651a097374696c6c206f757422026d322a03426f623080e8b5eadf6738024210623535303265386437303566653736654802',1);
INSERT INTO deliveries VALUES('m3','carol','carol',1,X'1205416c6963651a086869206361726f6c22026d332a056361726f6c3080e8b5eadf6738014210323164636265386539383966633634324801',0);
CREATE TABLE IF NOT EXISTS "inbound" (
        conversation  TEXT NOT NULL,
        sender_key    TEXT NOT NULL,
        epoch         TEXT NOT NULL,
        next_sequence INTEGER NOT NULL,
        PRIMARY KEY (conversation, sender_key)
      ) WITHOUT ROWID;
INSERT INTO inbound VALUES('bob','bob','e1',3);
INSERT INTO inbound VALUES('carol','carol','e1',2);
CREATE UNIQUE INDEX messages_key ON messages (sender_key, id, ours);
CREATE INDEX messages_history ON messages (conversation, seq)
        WHERE in_history = 1;
CREATE INDEX messages_ours ON messages (id) WHERE ours = 1;
CREATE INDEX messages_held
        ON messages (conversation, sender_key, epoch, sequence)
        WHERE state = 0;
CREATE INDEX messages_forgettable ON messages (released)
        WHERE in_history = 0;
COMMIT;
PRAGMA user_version=10;

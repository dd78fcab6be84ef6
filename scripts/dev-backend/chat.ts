/**
 * The platform's chat handler, as far as the demo needs it, in memory: the four commands the
 * gateway bridges to `chat.commands` and the `chat.event`s they produce, with the platform's
 * audiences (docs/events.md, chat bridge):
 *
 * - `send_message` → `message_received` to the recipient, then the same payload to the sender;
 * - `send_lobby_message` → `lobby_message_received` to the lobby (room audience, the lobby id);
 *   an unknown lobby → `error lobby_not_found` to the sender;
 * - `mark_read` → `message_read` to the original sender, only when something was unread;
 * - `typing` → `typing_indicator` to the recipient.
 *
 * Differences, because there is no database: everybody may message everybody except themselves
 * (the platform's friendship check; a message to oneself is refused with `not_friends`, as it is for
 * non-admins there), names come from the command's actor, and nothing survives a restart.
 */
import type { Envelope, Json, JsonObject } from '../../lib/protocol/envelope';
import { TOPICS } from '../../lib/protocol/envelope';
import { audience, backendEnvelope, backendTimestamp, type OutboundEvent } from './envelope';

/** The lobbies of a fresh platform database. */
export const LOBBIES: Readonly<Record<number, string>> = { 1: 'general', 2: 'games', 3: 'help' };

const NOT_FRIENDS = 'You can only message friends or people who allow messages from everyone';
const LOBBY_NOT_FOUND = 'The lobby does not exist';

/** The platform reads ids as JSON integers (`as_i64`); anything else means the command is dropped. */
function int(payload: JsonObject, key: string): number | undefined {
  const v: Json | undefined = payload[key];
  return typeof v === 'number' && Number.isSafeInteger(v) ? v : undefined;
}

function str(payload: JsonObject, key: string): string | undefined {
  const v = payload[key];
  return typeof v === 'string' ? v : undefined;
}

export interface ChatHandler {
  /** The events one `chat.commands` record produces (none for a command the platform would drop). */
  handle(command: Envelope): OutboundEvent[];
}

export interface ChatOptions {
  /** Message ids (24 hex characters, like the platform's); injectable for tests. */
  readonly messageId?: () => string;
  readonly now?: () => Date;
}

export function createChat({ messageId, now = () => new Date() }: ChatOptions = {}): ChatHandler {
  let counter = 0;
  let lobbyMessageId = 1000;
  const nextMessageId =
    messageId ??
    (() => {
      counter += 1;
      const seconds = Math.floor(now().getTime() / 1000)
        .toString(16)
        .padStart(8, '0');
      return `${seconds}${counter.toString(16).padStart(16, '0')}`.slice(0, 24);
    });
  /** Unread direct messages per `sender>recipient`. */
  const unread = new Map<string, number>();

  const event = (key: string, to: number | string, payload: JsonObject): OutboundEvent => ({
    topic: TOPICS.chatEvents,
    key,
    envelope: backendEnvelope(
      'chat.event',
      typeof to === 'number' ? audience.user(to) : audience.room(to),
      payload,
    ),
  });
  const conversation = (a: number, b: number) => `dm:${Math.min(a, b)}:${Math.max(a, b)}`;

  return {
    handle(command) {
      const p = command.payload;
      const name = command.actor.username;
      switch (str(p, 'type')) {
        case 'send_message': {
          const sender = int(p, 'sender_id');
          const recipient = int(p, 'recipient_id');
          const content = str(p, 'content');
          if (sender === undefined || recipient === undefined || content === undefined) return [];
          const key = conversation(sender, recipient);
          if (sender === recipient) {
            return [
              event(key, sender, {
                type: 'error',
                code: 'not_friends',
                message: NOT_FRIENDS,
                socket_id: str(p, 'socket_id') ?? '',
              }),
            ];
          }
          const unreadKey = `${sender}>${recipient}`;
          unread.set(unreadKey, (unread.get(unreadKey) ?? 0) + 1);
          const message: JsonObject = {
            type: 'message_received',
            message_id: nextMessageId(),
            sender_id: sender,
            sender_username: name,
            sender_avatar_id: null,
            recipient_id: recipient,
            content,
            message_type: 'text',
            created_at: backendTimestamp(now()),
          };
          return [event(key, recipient, message), event(key, sender, { ...message })];
        }
        case 'send_lobby_message': {
          const sender = int(p, 'sender_id');
          const lobby = int(p, 'lobby_id');
          const content = str(p, 'content');
          if (sender === undefined || lobby === undefined || content === undefined) return [];
          const key = `lobby:${lobby}`;
          if (!Object.hasOwn(LOBBIES, lobby)) {
            return [
              event(key, sender, {
                type: 'error',
                code: 'lobby_not_found',
                message: LOBBY_NOT_FOUND,
                socket_id: str(p, 'socket_id') ?? '',
              }),
            ];
          }
          lobbyMessageId += 1;
          return [
            event(key, String(lobby), {
              type: 'lobby_message_received',
              message_id: lobbyMessageId,
              lobby_id: lobby,
              sender_id: sender,
              sender_username: name,
              sender_avatar_id: null,
              content,
              message_type: 'text',
              // PostgreSQL's timestamptz: microseconds.
              created_at: now()
                .toISOString()
                .replace(/\.(\d{3})Z$/, '.$1000+00:00'),
            }),
          ];
        }
        case 'mark_read': {
          const reader = int(p, 'user_id');
          const other = int(p, 'other_user_id');
          if (reader === undefined || other === undefined) return [];
          const unreadKey = `${other}>${reader}`;
          if (!unread.get(unreadKey)) return [];
          unread.delete(unreadKey);
          return [
            event(conversation(reader, other), other, {
              type: 'message_read',
              reader_id: reader,
              sender_id: other,
              read_at: backendTimestamp(now()),
            }),
          ];
        }
        case 'typing': {
          const sender = int(p, 'sender_id');
          const recipient = int(p, 'recipient_id');
          if (sender === undefined || recipient === undefined) return [];
          const isTyping = p['is_typing'] !== false;
          return [
            event(conversation(sender, recipient), recipient, {
              type: 'typing_indicator',
              sender_id: sender,
              recipient_id: recipient,
              is_typing: isTyping,
            }),
          ];
        }
        default:
          return [];
      }
    },
  };
}

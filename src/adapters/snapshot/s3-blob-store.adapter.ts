import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  NoSuchKey,
  PutObjectCommand,
  S3Client,
  S3ServiceException,
  UploadPartCommand,
  type CompletedPart,
  type GetObjectCommandOutput,
} from '@aws-sdk/client-s3';
import { BlobNotFoundError, checkBlobName, onBlob, type BlobInfo, type BlobStore } from './blob-store.js';

export interface S3BlobStoreOptions {
  bucket: string;
  /** Key prefix of every object ("github-mirror/"); '' = the bucket's root. */
  prefix: string;
  region: string;
  /** S3-compatible endpoint (MinIO, LocalStack, a test server); '' = AWS. */
  endpoint?: string;
  forcePathStyle?: boolean;
  /** Static credentials (tests, the CLI); default: the SDK's default chain (env, profile, IAM role, ...). */
  credentials?: { accessKeyId: string; secretAccessKey: string; sessionToken?: string };
  /** Size of one multipart part (default 8 MiB; S3's minimum is 5 MiB). */
  partBytes?: number;
  /** Per-request timeout in ms (default 60 s). */
  requestTimeoutMs?: number;
  /** Use this client instead of building one (it is not destroyed by close()). */
  client?: S3Client;
}

const MIN_PART_BYTES = 5 * 1024 * 1024;

function isNotFound(error: unknown): boolean {
  if (error instanceof NoSuchKey) return true;
  return error instanceof S3ServiceException && (error.name === 'NotFound' || error.$metadata.httpStatusCode === 404);
}

/**
 * Snapshot objects in an S3 bucket. Small blobs go up in one PutObject; larger ones as a multipart
 * upload of `partBytes` parts, buffered one part at a time. Either way the object appears whole or
 * not at all: S3 shows a multipart object only once CompleteMultipartUpload succeeds, so a process
 * killed mid-upload leaves an incomplete upload (invisible; `sweep` aborts it, and a bucket lifecycle
 * rule should too) and never a partial object.
 */
export class S3BlobStore implements BlobStore {
  readonly kind = 's3';
  readonly location: string;
  private readonly client: S3Client;
  private readonly ownsClient: boolean;
  private readonly partBytes: number;

  constructor(private readonly options: S3BlobStoreOptions) {
    if (options.bucket.trim() === '') throw new RangeError('S3BlobStore: bucket is required');
    this.partBytes = Math.max(MIN_PART_BYTES, options.partBytes ?? 8 * 1024 * 1024);
    this.location = `s3://${options.bucket}/${options.prefix}`;
    this.ownsClient = options.client === undefined;
    this.client =
      options.client ??
      new S3Client({
        region: options.region,
        ...(options.endpoint ? { endpoint: options.endpoint } : {}),
        forcePathStyle: options.forcePathStyle ?? false,
        ...(options.credentials ? { credentials: options.credentials } : {}),
        // S3-compatible stores do not all understand the newer flexible checksums; every part and
        // the whole snapshot carry their own checksums anyway
        requestChecksumCalculation: 'WHEN_REQUIRED',
        responseChecksumValidation: 'WHEN_REQUIRED',
        requestHandler: { requestTimeout: options.requestTimeoutMs ?? 60_000, connectionTimeout: 5_000 },
      });
  }

  private key(name: string): string {
    return `${this.options.prefix}${name}`;
  }

  async list(): Promise<BlobInfo[]> {
    const out: BlobInfo[] = [];
    let token: string | undefined;
    do {
      const page = await this.client.send(
        new ListObjectsV2Command({ Bucket: this.options.bucket, Prefix: this.options.prefix, ...(token ? { ContinuationToken: token } : {}) }),
      );
      for (const object of page.Contents ?? []) {
        if (object.Key === undefined) continue;
        const name = object.Key.slice(this.options.prefix.length);
        if (name === '' || name.includes('/')) continue;
        out.push({ name, size: object.Size ?? 0, modifiedAt: object.LastModified?.getTime() ?? 0 });
      }
      token = page.IsTruncated === true ? page.NextContinuationToken : undefined;
    } while (token !== undefined);
    return out;
  }

  async put(name: string, body: AsyncIterable<Uint8Array>): Promise<number> {
    checkBlobName(name);
    const Bucket = this.options.bucket;
    const Key = this.key(name);
    const iterator = body[Symbol.asyncIterator]();
    let written = 0;
    let ended = false;
    /** The next part: up to partBytes, or less at the end of the stream. */
    const nextPart = async (): Promise<Buffer> => {
      const chunks: Uint8Array[] = [];
      let size = 0;
      while (size < this.partBytes) {
        const next = await iterator.next();
        if (next.done === true) {
          ended = true;
          break;
        }
        chunks.push(next.value);
        size += next.value.byteLength;
      }
      written += size;
      return Buffer.concat(chunks, size);
    };

    const first = await nextPart();
    if (ended) {
      await this.client.send(new PutObjectCommand({ Bucket, Key, Body: first, ContentLength: first.length, ContentType: 'application/octet-stream' }));
      return written;
    }
    const created = await this.client.send(new CreateMultipartUploadCommand({ Bucket, Key, ContentType: 'application/octet-stream' }));
    const UploadId = created.UploadId;
    if (UploadId === undefined) throw new Error('S3 did not return an upload id');
    const parts: CompletedPart[] = [];
    try {
      let part: Buffer = first;
      for (let PartNumber = 1; ; PartNumber += 1) {
        // the next part is read from the encoder while this one uploads
        const uploading = this.client.send(new UploadPartCommand({ Bucket, Key, UploadId, PartNumber, Body: part, ContentLength: part.length }));
        const following = ended ? undefined : nextPart();
        following?.catch(() => undefined);
        const uploaded = await uploading;
        parts.push({ PartNumber, ETag: uploaded.ETag });
        if (following === undefined) break;
        part = await following;
        if (part.length === 0) break;
      }
      await this.client.send(new CompleteMultipartUploadCommand({ Bucket, Key, UploadId, MultipartUpload: { Parts: parts } }));
    } catch (error) {
      await this.client.send(new AbortMultipartUploadCommand({ Bucket, Key, UploadId })).catch(() => undefined);
      throw error;
    } finally {
      // stop the encoder if the upload failed half-way
      if (!ended) await iterator.return?.();
    }
    return written;
  }

  read(name: string): Promise<AsyncIterable<Uint8Array>> {
    // in Node the body is a Readable, which is an async iterable of Buffers
    return onBlob(name, isNotFound, async () => (await this.get(name)) as unknown as AsyncIterable<Uint8Array>);
  }

  readAll(name: string): Promise<Buffer> {
    return onBlob(name, isNotFound, async () => Buffer.from(await (await this.get(name)).transformToByteArray()));
  }

  delete(name: string): Promise<void> {
    return onBlob(
      name,
      isNotFound,
      async () => {
        await this.client.send(new DeleteObjectCommand({ Bucket: this.options.bucket, Key: this.key(name) }));
      },
      () => undefined,
    );
  }

  private async get(name: string): Promise<NonNullable<GetObjectCommandOutput['Body']>> {
    const object = await this.client.send(new GetObjectCommand({ Bucket: this.options.bucket, Key: this.key(name) }));
    if (object.Body === undefined) throw new BlobNotFoundError(name);
    return object.Body;
  }


  /** Aborts multipart uploads under the prefix started more than `olderThanMs` ago (killed writers). */
  async sweep(olderThanMs: number): Promise<number> {
    let uploads;
    try {
      uploads = await this.client.send(new ListMultipartUploadsCommand({ Bucket: this.options.bucket, Prefix: this.options.prefix }));
    } catch (error) {
      // some S3-compatible stores do not list uploads: a lifecycle rule has to clean them up there
      if (error instanceof S3ServiceException && (error.name === 'NotImplemented' || error.name === 'MethodNotAllowed')) return 0;
      throw error;
    }
    let aborted = 0;
    const now = Date.now();
    for (const upload of uploads.Uploads ?? []) {
      if (upload.Key === undefined || upload.UploadId === undefined) continue;
      if (now - (upload.Initiated?.getTime() ?? now) < olderThanMs) continue;
      await this.client.send(new AbortMultipartUploadCommand({ Bucket: this.options.bucket, Key: upload.Key, UploadId: upload.UploadId }));
      aborted += 1;
    }
    return aborted;
  }

  close(): void {
    if (this.ownsClient) this.client.destroy();
  }
}

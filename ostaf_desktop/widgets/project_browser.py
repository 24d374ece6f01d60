"""The project browser: projects with thumbnail, attribute count and when last opened."""

from __future__ import annotations

from datetime import UTC, datetime

from PySide6.QtCore import QSize, Qt
from PySide6.QtGui import QFont, QIcon, QImage
from PySide6.QtWidgets import (
    QInputDialog,
    QListWidget,
    QListWidgetItem,
    QWidget,
)

from ostaf_desktop.binding import bind_to
from ostaf_desktop.icons import icon
from ostaf_desktop.qt_images import qimage_from_data_url, read_thumbnail
from ostaf_desktop.viewmodels.projects import ProjectRow, ProjectsViewModel
from ostaf_desktop.widgets.layout import Section, confirm, label, tool_button
from ostaf_desktop.widgets.thumbnails import square_icon

THUMB = 40
SLUG_ROLE = Qt.ItemDataRole.UserRole


def ago(iso: str, now: datetime | None = None) -> str:
    """'just now', '5 min ago', '3 h ago', '2 days ago' or the date."""
    try:
        then = datetime.strptime(iso, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    except ValueError:
        return "never"
    seconds = ((now or datetime.now(UTC)) - then).total_seconds()
    if seconds < 60:
        return "just now"
    if seconds < 3600:
        return f"{int(seconds // 60)} min ago"
    if seconds < 86400:
        return f"{int(seconds // 3600)} h ago"
    if seconds < 14 * 86400:
        days = int(seconds // 86400)
        return f"{days} day{'s' if days > 1 else ''} ago"
    return then.strftime("%Y-%m-%d")


def project_icon(row: ProjectRow) -> QIcon:
    image = qimage_from_data_url(row.thumbnail) if row.thumbnail else QImage()
    if image.isNull() and row.reference_image is not None:
        image = read_thumbnail(row.reference_image, THUMB * 2)
    return square_icon(image, THUMB, icon("folder"))


class ProjectBrowser(Section):
    """Lists projects; create, rename, delete (after confirming) and open them."""

    def __init__(self, vm: ProjectsViewModel, parent: QWidget | None = None) -> None:
        super().__init__("Projects", parent)
        self.vm = vm
        self.new_button = self.add_header_button(tool_button("new-project", "New project (Ctrl+N)"))
        self.rename_button = self.add_header_button(tool_button("rename", "Rename project"))
        self.delete_button = self.add_header_button(tool_button("delete", "Delete project"))
        self.list = QListWidget()
        self.list.setIconSize(QSize(THUMB, THUMB))
        self.list.setUniformItemSizes(True)
        self.list.setTextElideMode(Qt.TextElideMode.ElideRight)
        self.list.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.list.setToolTip("Double-click a project to open it")
        self.body.addWidget(self.list, 1)
        self.problems = label(role="warning", wrap=True)
        self.body.addWidget(self.problems)

        self.new_button.clicked.connect(self.create_project)
        self.rename_button.clicked.connect(self.rename_project)
        self.delete_button.clicked.connect(self.delete_project)
        self.list.itemActivated.connect(lambda item: vm.open(item.data(SLUG_ROLE)))
        self.list.itemDoubleClicked.connect(lambda item: vm.open(item.data(SLUG_ROLE)))
        bind_to(vm, "rows", lambda _: self._fill(), self)
        bind_to(vm, "current", lambda _: self._fill(), self)
        bind_to(vm, "problems", self._show_problems, self)

    def selected_slug(self) -> str:
        item = self.list.currentItem()
        return str(item.data(SLUG_ROLE)) if item is not None else self.vm.current_slug

    def _fill(self) -> None:
        current = self.vm.current_slug
        self.list.clear()
        for row in self.vm.rows:
            count = f"{row.attribute_count} attribute{'s' if row.attribute_count != 1 else ''}"
            item = QListWidgetItem(
                project_icon(row), f"{row.name}\n{count} · {ago(row.last_opened)}"
            )
            item.setData(SLUG_ROLE, row.slug)
            item.setToolTip(f"{row.name}\nfolder: {row.slug}")
            if row.slug == current:
                font = QFont(item.font())
                font.setBold(True)
                item.setFont(font)
            self.list.addItem(item)
            if row.slug == current:
                self.list.setCurrentItem(item)

    def _show_problems(self, problems: tuple[str, ...]) -> None:
        self.problems.setVisible(bool(problems))
        self.problems.setText("Could not read: " + "; ".join(problems))

    def create_project(self) -> None:
        name, ok = QInputDialog.getText(self, "New project", "Name of the new project:")
        if ok and name.strip():
            self.vm.create(name)

    def rename_project(self) -> None:
        slug = self.selected_slug()
        row = next((r for r in self.vm.rows if r.slug == slug), None)
        if row is None:
            return
        name, ok = QInputDialog.getText(self, "Rename project", "New name:", text=row.name)
        if ok and name.strip() and name != row.name:
            self.vm.rename(slug, name)

    def delete_project(self) -> None:
        slug = self.selected_slug()
        row = next((r for r in self.vm.rows if r.slug == slug), None)
        if row is None:
            return
        if confirm(
            self,
            "Delete project",
            f"Move '{row.name}' and its {row.attribute_count} attribute(s) to the trash folder?"
            "\n\nIt can be restored by hand from the projects/.trash folder.",
        ):
            self.vm.delete(slug)
